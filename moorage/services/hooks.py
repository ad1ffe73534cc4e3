"""Receiving a webhook: verify, filter, de-duplicate, rate-limit, fan out, log the delivery.

Answers (status, body) and never raises on a hostile request. Nothing is queued
unless the signature is good, the filters match and the delivery is new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from moorage import metrics
from moorage.errors import NotFound
from moorage.plugins.registry import Registry
from moorage.plugins.spec import HookRequest, HookTrigger, HookVerdict
from moorage.services.firing import fire
from moorage.services.ratelimit import RateLimiter
from moorage.store.tables import Delivery, Trigger, utcnow

KEEP_DELIVERIES = 100
REPLAY_WINDOW = timedelta(hours=24)
REPLAY_GUARDS = ("queued", "filtered")  # outcomes whose delivery id may not come again


@dataclass
class HookAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    queued: bool = False


def _log(
    session: Session,
    trigger: Trigger,
    request: HookRequest,
    verdict: HookVerdict | None,
    outcome: str,
    reason: str,
    status: int,
    deployments: list[str],
) -> int:
    row = Delivery(
        trigger_id=trigger.id,
        source=request.source[:64],
        provider=verdict.provider if verdict else "",
        event=verdict.event if verdict else "",
        delivery_id=verdict.delivery_id if verdict else None,
        signature=verdict.signature if verdict else "unchecked",
        outcome=outcome,
        reason=reason,
        status_code=status,
        deployments=deployments,
    )
    session.add(row)
    session.flush()
    metrics.HOOK_DELIVERIES.labels(outcome).inc()
    # Keep the newest KEEP_DELIVERIES per trigger, and any older signed delivery whose id
    # still guards against its replay: else a flood of refused calls would rotate it out.
    # (Only signed ones: nobody without the secret can make those, so they stay few.)
    cutoff = session.scalars(
        select(Delivery.id)
        .where(Delivery.trigger_id == trigger.id)
        .order_by(Delivery.id.desc())
        .offset(KEEP_DELIVERIES)
        .limit(1)
    ).first()
    if cutoff is not None:
        session.execute(
            delete(Delivery).where(
                Delivery.trigger_id == trigger.id,
                Delivery.id <= cutoff,
                ~(
                    Delivery.delivery_id.is_not(None)
                    & (Delivery.signature == "valid")
                    & Delivery.outcome.in_(REPLAY_GUARDS)
                    & (Delivery.at >= utcnow() - REPLAY_WINDOW)
                ),
            )
        )
    return row.id


def receive(
    session: Session, registry: Registry, limiter: RateLimiter, token: str, request: HookRequest
) -> HookAnswer:
    trigger = session.scalar(select(Trigger).where(Trigger.token == token))
    plugin = registry.triggers.get(trigger.kind) if trigger is not None else None
    if trigger is None or not isinstance(plugin, HookTrigger):
        raise NotFound(
            "no webhook at this URL; check the token on the trigger", code="unknown_hook"
        )
    per_minute = int(trigger.config.get("rate_limit_per_minute", 60))
    allowed, wait = limiter.allow(trigger.id, per_minute)
    if not allowed:
        reason = f"more than {per_minute} calls a minute"
        _log(session, trigger, request, None, "rate_limited", reason, 429, [])
        return HookAnswer(
            429,
            _error("rate_limited", f"{reason}; retry later"),
            {"Retry-After": str(max(1, round(wait)))},
        )
    verdict = plugin.receive(dict(trigger.config), request)
    if not verdict.authentic:
        _log(session, trigger, request, verdict, "refused", verdict.reason, 401, [])
        return HookAnswer(401, _error("bad_signature", f"{verdict.reason}; nothing was queued"))
    if verdict.delivery_id:
        earlier = session.scalar(
            select(Delivery)
            .where(
                Delivery.trigger_id == trigger.id,
                Delivery.delivery_id == verdict.delivery_id,
                Delivery.outcome.in_(REPLAY_GUARDS),
                Delivery.at >= utcnow() - REPLAY_WINDOW,
            )
            .order_by(Delivery.id)
            .limit(1)
        )
        if earlier is not None:
            reason = f"delivery {verdict.delivery_id} was already received"
            _log(session, trigger, request, verdict, "duplicate", reason, 200, [])
            return HookAnswer(
                200, {"duplicate": True, "reason": reason, "deployments": list(earlier.deployments)}
            )
    if not verdict.matched:
        delivery = _log(session, trigger, request, verdict, "filtered", verdict.reason, 202, [])
        return HookAnswer(
            202, {"delivery": delivery, "queued": 0, "deployments": [], "reason": verdict.reason}
        )
    queued = fire(session, trigger)
    delivery = _log(session, trigger, request, verdict, "queued", verdict.reason, 202, queued)
    return HookAnswer(
        202,
        {
            "delivery": delivery,
            "queued": len(queued),
            "deployments": queued,
            "reason": verdict.reason,
        },
        queued=bool(queued),
    )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": None}}


def deliveries(session: Session, trigger_id: str) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.trigger_id == trigger_id)
            .order_by(Delivery.id.desc())
            .limit(KEEP_DELIVERIES)
        )
    )
