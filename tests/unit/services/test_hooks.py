"""The webhook replay guard at the service, on SQLite and on PostgreSQL (when
MOORAGE_TEST_DATABASE_URL is set): two copies of one delivery that both look for an
earlier one before either has queued still queue once.

The interleaving is forced, not hoped for: each copy waits at a barrier right after it
has looked (and found nothing), so both go on to queue at the same time. Rows are made
through the services; each copy runs in its own session, as two API threads would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import annotation

from moorage.plugins.registry import Registry
from moorage.plugins.spec import HookRequest
from moorage.security.roles import SYSTEM
from moorage.server import load_registry
from moorage.services import hooks, projects, triggers, workloads
from moorage.services.hooks import HookAnswer
from moorage.services.ratelimit import RateLimiter
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.tables import Delivery, DeliveryClaim, Deployment, utcnow
from tests.fakes.world import ran
from tests.unit.store import test_store

SECRET = "a-shared-secret-for-tests"

# The store tests' fixtures serve here too: ``db`` is a fresh, migrated database on SQLite,
# and on PostgreSQL when MOORAGE_TEST_DATABASE_URL is set (its ``pg_url``).
db, pg_url = test_store.db, test_store.pg_url


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@dataclass
class Hook:
    token: str
    trigger_id: str
    workload_id: str


def make_hook(db: Database, registry: Registry, config: dict[str, Any]) -> Hook:
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop")
        workload = workloads.create(
            s,
            SYSTEM,
            registry,
            Settings(data_dir=Path("/nonexistent/moorage")),
            name="web",
            kind="image",
            project="shop",
            stage="production",
            config={"image": "moorage-test/httpd:1"},
        )
        trigger = triggers.create(s, SYSTEM, registry, kind="webhook", name="push", config=config)
        triggers.bind(s, SYSTEM, workload.id, trigger.id)
        assert trigger.token is not None
        return Hook(trigger.token, trigger.id, workload.id)


def delivery(body: bytes, delivery_id: str | None, secret: str | None) -> HookRequest:
    headers = {"x-github-event": "push", "content-type": "application/json"}
    if delivery_id is not None:
        headers["x-github-delivery"] = delivery_id
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["x-hub-signature-256"] = f"sha256={digest}"
    return HookRequest(headers=headers, body=body, source="127.0.0.1")


def push(n: int) -> bytes:
    return json.dumps({"ref": "refs/heads/main", "after": f"{n + 1:040x}"}).encode()


def send(db: Database, registry: Registry, hook: Hook, request: HookRequest) -> HookAnswer:
    with db.session() as s:
        return hooks.receive(s, registry, RateLimiter(), hook.token, request)


def queued(db: Database, hook: Hook) -> list[str]:
    with db.session() as s:
        return sorted(
            s.scalars(select(Deployment.id).where(Deployment.workload_id == hook.workload_id))
        )


def outcomes(db: Database, hook: Hook) -> list[tuple[str | None, str, int]]:
    with db.session() as s:
        rows = s.execute(
            select(Delivery.delivery_id, Delivery.outcome, Delivery.status_code)
            .where(Delivery.trigger_id == hook.trigger_id)
            .order_by(Delivery.id)
        ).all()
    return [(d, o, c) for d, o, c in rows]


def together(
    db: Database,
    registry: Registry,
    hook: Hook,
    requests: list[HookRequest],
    monkeypatch: pytest.MonkeyPatch,
) -> list[HookAnswer]:
    """Each request in its own thread and session; each waits, after its first look for
    an earlier delivery, until every copy has looked."""
    barrier = threading.Barrier(len(requests))
    looked = threading.local()
    real = hooks._earlier

    def earlier_then_wait(*args: Any) -> Any:
        found = real(*args)
        if not getattr(looked, "once", False):
            looked.once = True
            barrier.wait(timeout=10)
        return found

    monkeypatch.setattr(hooks, "_earlier", earlier_then_wait)
    limiter = RateLimiter()
    answers: list[HookAnswer] = []
    errors: list[BaseException] = []

    def send(request: HookRequest) -> None:
        try:
            with db.session() as s:
                answer = hooks.receive(s, registry, limiter, hook.token, request)
            answers.append(answer)  # after the commit, as the route answers
        except BaseException as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(r,), daemon=True) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    monkeypatch.setattr(hooks, "_earlier", real)
    assert not any(t.is_alive() for t in threads), "a copy is stuck"
    assert errors == []
    return answers


@pytest.mark.parametrize(
    ("secret", "ids"),
    [
        (SECRET, ["d-1", "d-1"]),  # the same delivery twice
        (None, ["d-1", "d-1"]),  # unsigned: the id is the only guard
        (SECRET, ["d-1", "d-2"]),  # the same signed body under two ids
        (SECRET, [None, None]),  # the same signed body under none
    ],
    ids=["same-id", "same-id-unsigned", "same-body-other-id", "same-body-no-id"],
)
def test_copies_arriving_together_queue_once(
    db: Database,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    secret: str | None,
    ids: list[str | None],
) -> None:
    config: dict[str, Any] = {"provider": "github"}
    if secret is not None:
        config["secret"] = secret
    hook = make_hook(db, registry, config)
    body = push(0)
    answers = together(db, registry, hook, [delivery(body, i, secret) for i in ids], monkeypatch)

    assert sorted(a.status for a in answers) == [200, 202]
    (first,) = [a.body for a in answers if a.status == 202]
    (again,) = [a.body for a in answers if a.status == 200]
    assert first["queued"] == 1
    assert queued(db, hook) == first["deployments"]
    assert again["duplicate"] is True
    assert again["deployments"] == first["deployments"]
    assert sorted(o for _, o, _ in outcomes(db, hook)) == ["duplicate", "queued"]

    # The guard holds afterwards too, and another delivery still fires: it joins the
    # deployment still queued, and queues one of its own once that one has run.
    assert send(db, registry, hook, delivery(body, ids[0], secret)).status == 200
    assert queued(db, hook) == first["deployments"]
    later = send(db, registry, hook, delivery(push(1), "d-9", secret))
    assert (later.status, later.body["joined"]) == (202, 1)
    assert later.body["deployments"] == first["deployments"] == queued(db, hook)
    ran(db)
    last = send(db, registry, hook, delivery(push(2), "d-10", secret))
    assert (last.status, last.body["joined"]) == (202, 0)
    assert len(queued(db, hook)) == 2


def test_a_claim_lasts_the_replay_window_and_no_longer(
    db: Database, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = make_hook(db, registry, {"provider": "github", "secret": SECRET})
    request = delivery(push(0), "d-1", SECRET)
    assert send(db, registry, hook, request).status == 202
    start = utcnow()
    monkeypatch.setattr(hooks, "utcnow", lambda: start + hooks.REPLAY_WINDOW - timedelta(minutes=1))
    assert send(db, registry, hook, request).status == 200
    monkeypatch.setattr(hooks, "utcnow", lambda: start + hooks.REPLAY_WINDOW + timedelta(minutes=1))
    ran(db)  # the first delivery's deploy has run: the next one queues its own
    assert send(db, registry, hook, request).status == 202
    assert len(queued(db, hook)) == 2
    assert [o for _, o, _ in outcomes(db, hook)] == ["queued", "duplicate", "queued"]


@pytest.fixture
def few_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """``KEEP_CLAIMS`` 4, a tidy every 3rd row, and a clock a second on at each reading."""
    monkeypatch.setattr(hooks, "KEEP_CLAIMS", 4)
    monkeypatch.setattr(hooks, "TIDY_EVERY", 3)
    start = utcnow()
    tick = iter(range(10_000))
    monkeypatch.setattr(hooks, "utcnow", lambda: start + timedelta(seconds=next(tick)))


def test_claims_stay_bounded_under_a_flood_of_new_delivery_ids(
    db: Database, registry: Registry, few_claims: None
) -> None:
    """Without a secret anyone with the URL sends new delivery ids, each a claim for the
    whole window: past ``KEEP_CLAIMS`` the oldest go at the next tidy, however young."""
    hook = make_hook(db, registry, {"provider": "generic"})
    counts = []
    for n in range(20):
        request = HookRequest(headers={"x-moorage-delivery": f"u-{n}"}, body=b"{}", source="")
        assert send(db, registry, hook, request).status == 202
        counts.append(len(claims(db, hook)))
    assert max(counts) <= 4 + 3
    kept = claims(db, hook)
    assert "id:u-19" in kept and "id:u-0" not in kept  # the newest stay


def test_a_signed_delivery_whose_claim_went_is_still_a_duplicate(
    db: Database, registry: Registry, few_claims: None
) -> None:
    """Its delivery row, which the log keeps for the window, guards it."""
    hook = make_hook(db, registry, {"provider": "github", "secret": SECRET})
    first = delivery(push(0), "s-0", SECRET)
    assert send(db, registry, hook, first).status == 202
    for n in range(1, 12):
        ran(db)
        assert send(db, registry, hook, delivery(push(n), f"s-{n}", SECRET)).status == 202
    digest = hashlib.sha256(push(0)).hexdigest()
    assert not {"id:s-0", f"sha256:{digest}"} & set(claims(db, hook))
    assert send(db, registry, hook, first).status == 200


def claims(db: Database, hook: Hook) -> list[str]:
    with db.session() as s:
        return list(
            s.scalars(select(DeliveryClaim.key).where(DeliveryClaim.trigger_id == hook.trigger_id))
        )


def test_the_delivery_log_is_rotated_every_few_rows_and_never_grows_past_it(
    db: Database, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotation runs on every ``TIDY_EVERY``-th row, so the table holds at most that many
    rows more than the log keeps; the log shown is the newest ``KEEP_DELIVERIES`` always,
    and the tidy drops claims past the window."""
    monkeypatch.setattr(hooks, "KEEP_DELIVERIES", 5)
    monkeypatch.setattr(hooks, "TIDY_EVERY", 3)
    hook = make_hook(db, registry, {"provider": "github", "filters": {"branch": "dev"}})
    start = utcnow()
    stored: list[int] = []
    for n in range(20):
        if n == 10:  # the claims made so far expire
            later = start + hooks.REPLAY_WINDOW + timedelta(minutes=1)
            monkeypatch.setattr(hooks, "utcnow", lambda: later)
        assert send(db, registry, hook, delivery(push(n), f"d-{n}", None)).status == 202
        stored.append(len(outcomes(db, hook)))
    assert max(stored) <= 5 + 3
    with db.session() as s:
        shown = [d.delivery_id for d in hooks.deliveries(s, hook.trigger_id)]
        claims = s.scalars(
            select(DeliveryClaim.key).where(DeliveryClaim.trigger_id == hook.trigger_id)
        ).all()
    assert shown == [f"d-{n}" for n in range(19, 14, -1)]
    assert sorted(claims) == sorted(f"id:d-{n}" for n in range(10, 20))


@pytest.mark.parametrize("module", [postgresql, sqlite], ids=["postgresql", "sqlite"])
def test_the_upsert_class_is_whole_before_the_first_delivery(module: Any) -> None:
    """Two first deliveries together once saw SQLAlchemy's annotated ``Insert`` half made
    (registered before its ``inherit_cache``) and failed with ``SAWarning``: the class is
    made whole at import, before any thread runs one."""
    made = annotation.annotated_classes.get(module.Insert)
    assert made is not None
    assert made.__dict__.get("inherit_cache") is True
