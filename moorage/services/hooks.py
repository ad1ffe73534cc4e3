"""Receiving a webhook: verify, de-duplicate, rate-limit, filter, fan out, log the delivery.

Answers (status, body) and never raises on a hostile request. Nothing is queued
unless the signature is good, the delivery is new and the filters match.

The order is the defence: the signature is checked before anything is spent, so
forged calls never use up the trigger's budget; a replay (the same delivery id, or
the same signed body under any id or none, within ``REPLAY_WINDOW``) is answered as
one before the budget too. What costs an attacker nothing (refused calls, replays,
calls over the budget) is logged at most ``per_minute`` times a minute, so it
cannot turn into unbounded writes either.

Looking for an earlier delivery cannot see a copy that arrives at the same instant:
so the delivery also claims its id and body digest (``delivery_claims``, keyed on
both) in the transaction that queues. The database lets one copy take a key; the
other waits for it to commit, finds the key taken, and answers as a replay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moorage import metrics
from moorage.errors import NotFound, error_body
from moorage.plugins.registry import Registry
from moorage.plugins.spec import HookRequest, HookTrigger, HookVerdict
from moorage.services.firing import fire
from moorage.services.ratelimit import RateLimiter
from moorage.store.states import DeliveryOutcome, DeliverySignature
from moorage.store.tables import Delivery, DeliveryClaim, Trigger, utcnow

KEEP_DELIVERIES = 100
KEEP_CLAIMS = 1000
"""Claims kept per trigger at most, newest first, even within the window: without a
secret anyone with the URL can send new delivery ids, and each would stay a row for the
whole window (about 14 M a day at the highest rate limit). A signed delivery's replay is
also caught by its delivery row, which the log keeps for the window (``_tidy``)."""
TIDY_EVERY = 10
"""A trigger's delivery log is rotated, and its expired claims dropped, on every 10th row
this process writes for it (``_tidy``)."""
_since_tidy: dict[str, int] = {}
"""Rows written per trigger id since its last ``_tidy`` (this process's count: after a
restart the first tidy comes at most ``TIDY_EVERY`` rows late)."""
_tidy_lock = threading.Lock()
FOREGROUND_KEY = "foreground"  # the RateLimiter bucket every trigger's deliveries share
FOREGROUND_PER_MINUTE = 120  # deliveries a minute, all triggers, that run as foreground work
UNBOUND = "no workload is bound to this trigger (bind workloads to it to deploy them)"
REPLAY_WINDOW = timedelta(hours=24)
# Outcomes whose delivery id may not come again.
REPLAY_GUARDS = (DeliveryOutcome.QUEUED, DeliveryOutcome.FILTERED)


@dataclass
class HookAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    queued: bool = False


class Call(NamedTuple):
    """One call to a hook URL and what answering it needs."""

    session: Session
    limiter: RateLimiter
    per_minute: int
    trigger: Trigger
    request: HookRequest
    verdict: HookVerdict


def _log(
    session: Session,
    trigger: Trigger,
    request: HookRequest,
    verdict: HookVerdict,
    outcome: DeliveryOutcome,
    reason: str,
    status: int,
    deployments: list[str],
    body_sha256: str | None = None,
) -> int:
    row = Delivery(
        trigger_id=trigger.id,
        source=request.source[:64],
        provider=verdict.provider,
        event=verdict.event,
        delivery_id=verdict.delivery_id,
        signature=verdict.signature,
        outcome=outcome,
        reason=reason,
        status_code=status,
        deployments=deployments,
        body_sha256=body_sha256,
        commit=verdict.commit,
        commit_title=verdict.commit_title,
    )
    session.add(row)
    session.flush()
    metrics.HOOK_DELIVERIES.labels(outcome).inc()
    with _tidy_lock:
        count = _since_tidy.get(trigger.id, 0) + 1
        _since_tidy[trigger.id] = count % TIDY_EVERY
    if count >= TIDY_EVERY:
        _tidy(session, trigger)
    return row.id


def _tidy(session: Session, trigger: Trigger) -> None:
    """Rotate the delivery log and drop expired claims and those past ``KEEP_CLAIMS``: a
    few statements, run on every ``TIDY_EVERY``-th delivery row, not on each (every
    statement of a fan-out's transaction costs it a wait for the GIL under load).
    Meanwhile the log holds up to ``TIDY_EVERY`` rows more than it shows, and the claims
    as many more than ``KEEP_CLAIMS``; ``deliveries`` shows the newest
    ``KEEP_DELIVERIES``, and a claim past the window is taken over where it stands
    (``_take``)."""
    # Claims past the window, and past the newest KEEP_CLAIMS however young (an unsigned
    # trigger's flood): one cutoff, the later of the two.
    claims_before = utcnow() - REPLAY_WINDOW
    oldest_kept = session.scalars(
        select(DeliveryClaim.at)
        .where(DeliveryClaim.trigger_id == trigger.id)
        .order_by(DeliveryClaim.at.desc())
        .offset(KEEP_CLAIMS - 1)
        .limit(1)
    ).first()
    if oldest_kept is not None:
        claims_before = max(claims_before, oldest_kept)
    # Claims a concurrent delivery is taking over (it holds their rows) are skipped, not
    # waited for: two transactions locking two claims in opposite orders would deadlock
    # on PostgreSQL. (SQLite has one writer; FOR UPDATE is not rendered there.)
    dropped = (
        select(DeliveryClaim.trigger_id, DeliveryClaim.key)
        .where(DeliveryClaim.trigger_id == trigger.id, DeliveryClaim.at < claims_before)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(DeliveryClaim).where(
            tuple_(DeliveryClaim.trigger_id, DeliveryClaim.key).in_(dropped)
        )
    )
    # Keep the newest KEEP_DELIVERIES per trigger, and any older signed delivery that
    # still guards against its replay (by id or body): else a flood of refused calls would
    # rotate it out. (Only signed ones: nobody without the secret can make those.)
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
                    (Delivery.signature == DeliverySignature.VALID)
                    & Delivery.outcome.in_(REPLAY_GUARDS)
                    & (Delivery.at >= utcnow() - REPLAY_WINDOW)
                ),
            )
        )


def _log_noise(
    call: Call,
    outcome: DeliveryOutcome,
    reason: str,
    status: int,
) -> None:
    """Log what an attacker can send for free at most ``per_minute`` times a minute."""
    session, limiter, per_minute, trigger, request, verdict = call
    if limiter.allow(f"noise:{trigger.id}", per_minute)[0]:
        _log(session, trigger, request, verdict, outcome, reason, status, [])
    else:
        metrics.HOOK_DELIVERIES.labels(outcome).inc()


def _earlier(
    session: Session, trigger: Trigger, delivery_id: str | None, body_sha256: str | None
) -> Delivery | None:
    """The delivery this one replays: the same id, or the same signed body, in the window."""
    same = []
    if delivery_id:
        same.append(Delivery.delivery_id == delivery_id)
    if body_sha256:
        same.append(Delivery.body_sha256 == body_sha256)
    if not same:
        return None
    return session.scalar(
        select(Delivery)
        .where(
            Delivery.trigger_id == trigger.id,
            or_(*same),
            Delivery.outcome.in_(REPLAY_GUARDS),
            Delivery.at >= utcnow() - REPLAY_WINDOW,
        )
        .order_by(Delivery.id)
        .limit(1)
    )


def _prepare_upserts() -> None:
    """Make SQLAlchemy's annotated twin of each dialect's ``Insert`` now, in one thread.

    The ORM makes that class the first time it runs such a statement, and it registers
    the class before setting its ``inherit_cache`` (``sqlalchemy.sql.annotation.
    _new_annotation_type``, 2.1): a copy arriving together with the first delivery saw the
    half-made class and raised ``SAWarning`` (CI, stop 26). Core's own classes are made at
    import; the dialects' ``Insert`` are not."""
    for upsert in (sqlite.insert, postgresql.insert):
        upsert(DeliveryClaim)._annotate({"prepared": True})


_prepare_upserts()


def _take(session: Session, trigger: Trigger, key: str) -> bool:
    """Insert the claim on ``key`` unless a claim on it within ``REPLAY_WINDOW`` is there
    (an older one is taken over: expired claims are deleted only now and then, ``_tidy``);
    whether this call took it. A copy inserting the same key in a transaction not yet
    committed makes this wait."""
    now = utcnow()
    row = {"trigger_id": trigger.id, "key": key, "at": now}
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        upsert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = upsert(DeliveryClaim).values(row)
        # RETURNING, not rowcount: through the ORM, psycopg reports -1 for either outcome.
        stmt = stmt.on_conflict_do_update(
            index_elements=[DeliveryClaim.trigger_id, DeliveryClaim.key],
            set_={"at": now},
            where=DeliveryClaim.at < now - REPLAY_WINDOW,
        )
        return session.scalar(stmt.returning(DeliveryClaim.key)) is not None
    session.execute(  # other databases: an expired claim goes first
        delete(DeliveryClaim).where(
            DeliveryClaim.trigger_id == trigger.id,
            DeliveryClaim.key == key,
            DeliveryClaim.at < now - REPLAY_WINDOW,
        )
    )
    try:  # the primary key refuses the second
        with session.begin_nested():
            session.execute(insert(DeliveryClaim).values(row))
    except IntegrityError:
        return False
    return True


def _claim(session: Session, trigger: Trigger, keys: list[str]) -> bool:
    """Claim every replay key of this delivery in the caller's transaction; False (and
    nothing claimed) when one was taken by an earlier delivery in the window or by a copy
    arriving together with this one."""
    taken: list[str] = []
    for key in keys:
        if not _take(session, trigger, key):
            if taken:
                session.execute(
                    delete(DeliveryClaim).where(
                        DeliveryClaim.trigger_id == trigger.id, DeliveryClaim.key.in_(taken)
                    )
                )
            return False
        taken.append(key)
    return True


def _replay(
    call: Call,
    earlier: Delivery | None,
) -> HookAnswer:
    """Answer a replay with what the earlier delivery queued."""
    verdict = call.verdict
    same_id = earlier is not None and earlier.delivery_id == verdict.delivery_id
    if earlier is not None and not (verdict.delivery_id and same_id):
        which = earlier.delivery_id or earlier.id
        reason = f"this signed body was already received (delivery {which})"
    elif verdict.delivery_id:
        reason = f"delivery {verdict.delivery_id} was already received"
    else:  # only its claim is left: the delivery log rotated the row out
        reason = "this signed body was already received"
    _log_noise(
        call,
        DeliveryOutcome.DUPLICATE,
        reason,
        200,
    )
    deployments = list(earlier.deployments) if earlier is not None else []
    return HookAnswer(200, {"duplicate": True, "reason": reason, "deployments": deployments})


def receive(
    session: Session,
    registry: Registry,
    limiter: RateLimiter,
    token: str,
    request: HookRequest,
    foreground: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> HookAnswer:
    trigger = session.scalar(select(Trigger).where(Trigger.token == token))
    plugin = registry.triggers.get(trigger.kind) if trigger is not None else None
    if trigger is None or not isinstance(plugin, HookTrigger):
        raise NotFound(
            "no webhook at this URL; check the token on the trigger", code="unknown_hook"
        )
    per_minute = int(trigger.config.get("rate_limit_per_minute", 60))
    verdict = plugin.receive(dict(trigger.config), request)
    call = Call(session, limiter, per_minute, trigger, request, verdict)
    if not verdict.authentic:
        _log_noise(
            call,
            DeliveryOutcome.REFUSED,
            verdict.reason,
            401,
        )
        return HookAnswer(401, error_body("bad_signature", f"{verdict.reason}; nothing was queued"))
    # Signed bytes are the proof of a delivery: the same ones again are a replay, whatever
    # delivery header (or none), or wrapping (a form, extra fields: a provider may sign
    # only part of the body), comes with them. An unsigned body proves nothing.
    body_sha256 = verdict.signed_sha256 if verdict.signature == DeliverySignature.VALID else None
    earlier = _earlier(session, trigger, verdict.delivery_id, body_sha256)
    if earlier is not None:
        return _replay(call, earlier)
    allowed, wait = limiter.allow(trigger.id, per_minute)
    if not allowed:
        reason = f"more than {per_minute} calls a minute"
        _log_noise(
            call,
            DeliveryOutcome.RATE_LIMITED,
            reason,
            429,
        )
        return HookAnswer(
            429,
            error_body("rate_limited", f"{reason}; retry later"),
            {"Retry-After": str(max(1, round(wait)))},
        )
    # From here it is a delivery that spent the budget: the deploy workers wait for its
    # answer (``foreground``: ``store/priority.py``). Nothing before this point opens the
    # block, so refused calls, replays and calls over the budget cannot hold it. Nor can
    # more than FOREGROUND_PER_MINUTE deliveries of all triggers together (an unsigned
    # trigger's URL is its only credential, and an operator may make many triggers):
    # past that, a delivery is answered as ordinary work.
    ahead = limiter.allow(FOREGROUND_KEY, FOREGROUND_PER_MINUTE)[0]
    with foreground() if ahead else nullcontext():
        answer = _deliver(call, body_sha256)
        session.commit()  # the answer is made: the rows are there for the workers it wakes
        return answer


def _deliver(
    call: Call,
    body_sha256: str | None,
) -> HookAnswer:
    """Claim, fire and log a delivery that passed its checks (``receive``)."""
    session, _limiter, _per_minute, trigger, request, verdict = call
    keys = [f"id:{verdict.delivery_id}"] if verdict.delivery_id else []
    keys += [f"sha256:{body_sha256}"] if body_sha256 else []
    if keys and not _claim(session, trigger, keys):
        # A copy that arrived together with this one claimed first and has committed by
        # now (this claim waited for it), so its delivery row is there to answer with.
        earlier = _earlier(session, trigger, verdict.delivery_id, body_sha256)
        return _replay(call, earlier)
    if not verdict.matched:
        delivery = _log(
            session,
            trigger,
            request,
            verdict,
            DeliveryOutcome.FILTERED,
            verdict.reason,
            202,
            [],
            body_sha256,
        )
        return HookAnswer(
            202,
            {
                "delivery": delivery,
                "queued": 0,
                "joined": 0,
                "deployments": [],
                "reason": verdict.reason,
            },
        )
    fired = fire(session, trigger)
    queued = fired.deployments
    # The filters' verdict says why the call matched; with no workload bound, that it
    # matched is not why nothing was queued.
    reason = verdict.reason if queued else f"{UNBOUND}; nothing was queued"
    delivery = _log(
        session,
        trigger,
        request,
        verdict,
        DeliveryOutcome.QUEUED,
        reason,
        202,
        queued,
        body_sha256,
    )
    return HookAnswer(
        202,
        {
            "delivery": delivery,
            "queued": len(queued),
            "joined": fired.joined,
            "deployments": queued,
            "reason": reason,
        },
        queued=bool(queued),
    )


def deliveries(session: Session, trigger_id: str) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.trigger_id == trigger_id)
            .order_by(Delivery.id.desc())
            .limit(KEEP_DELIVERIES)
        )
    )
