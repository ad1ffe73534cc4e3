"""Firing a trigger (services/firing.py) on the real store: one queued deploy per bound
workload with the trigger as its actor, ``only`` narrows the set, and nothing bound
queues nothing and leaves ``last_fired_at`` alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from moorage.plugins.registry import Registry
from moorage.services import firing, triggers
from moorage.store.db import Database
from moorage.store.tables import AuditEntry, Deployment, Trigger
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, audit_rows, make

# The store fixtures of test_workloads: SQLite, and PostgreSQL when asked.
db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def push(shop: Database, registry: Registry) -> str:
    """A webhook trigger ``push`` bound to nothing; no audit rows."""
    with shop.session() as s:
        trigger_id = triggers.create(s, ADA, registry, kind="webhook", name="push", config={}).id
        s.execute(delete(AuditEntry))
    return trigger_id


def bind(db: Database, trigger_id: str, *workload_ids: str) -> None:
    with db.session() as s:
        for workload_id in workload_ids:
            triggers.bind(s, ADA, workload_id, trigger_id)
        s.execute(delete(AuditEntry))


def fire(
    db: Database,
    trigger_id: str,
    *,
    only: list[str] | None = None,
    pull: bool = False,
    at: datetime | None = None,
) -> list[str]:
    with db.session() as s:
        return firing.fire(s, s.get_one(Trigger, trigger_id), only=only, pull=pull, at=at)


def deployments(db: Database) -> list[tuple[str, str, str, bool]]:
    with db.session() as s:
        rows = s.scalars(select(Deployment).order_by(Deployment.workload_id))
        return [(d.workload_id, d.status, d.reason, d.pull) for d in rows]


def last_fired(db: Database, trigger_id: str) -> datetime | None:
    with db.session() as s:
        return s.get_one(Trigger, trigger_id).last_fired_at


def test_the_trigger_actor_names_the_trigger(shop: Database, push: str) -> None:
    with shop.session() as s:
        actor = firing.trigger_actor(s.get_one(Trigger, push))
    assert (actor.username, actor.role, actor.via, actor.user_id) == (
        "webhook:push",
        "operator",
        "system",
        "",
    )


def test_fire_queues_one_deploy_per_bound_workload(
    shop: Database, registry: Registry, push: str
) -> None:
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    make(shop, registry, name="unbound")
    bind(shop, push, web, api)
    queued = fire(shop, push, pull=True, at=AT)
    assert len(queued) == 2 and len(set(queued)) == 2
    reason = f"trigger:{push}"
    assert deployments(shop) == sorted(
        [(web, "queued", reason, True), (api, "queued", reason, True)]
    )
    rows = audit_rows(shop)
    assert sorted(r[2] for r in rows) == sorted([web, api])
    for actor, action, _, details in rows:
        assert (actor, action) == ("webhook:push", "workload.deploy")
        assert details["via"] == "system" and details["reason"] == reason
        assert details["deployment"] in queued
    fired = last_fired(shop, push)
    assert fired is not None and fired.replace(tzinfo=UTC) == AT


def test_only_narrows_the_workloads(shop: Database, registry: Registry, push: str) -> None:
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    bind(shop, push, web, api)
    assert len(fire(shop, push, only=[api, "wl_not_bound"])) == 1
    assert [d[0] for d in deployments(shop)] == [api]


def test_nothing_bound_queues_nothing(shop: Database, registry: Registry, push: str) -> None:
    assert fire(shop, push, at=AT) == []
    web = make(shop, registry).id
    bind(shop, push, web)
    assert fire(shop, push, only=[], at=AT) == []
    assert deployments(shop) == []
    assert audit_rows(shop) == []
    assert last_fired(shop, push) is None
