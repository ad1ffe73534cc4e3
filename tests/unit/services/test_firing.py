"""Firing a trigger (services/firing.py) on the real store: one queued deploy per bound
workload with the trigger as its actor, ``only`` narrows the set, and nothing bound
queues nothing and leaves ``last_fired_at`` alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM
from moorage.services import deploys, firing, triggers
from moorage.store.db import Database
from moorage.store.states import DeploymentStatus
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


def fire(db: Database, trigger_id: str, **how: Any) -> list[str]:
    """The deployment ids of one firing (joined ones included); ``how`` as ``fired``."""
    return fired(db, trigger_id, **how).deployments


def fired(
    db: Database,
    trigger_id: str,
    *,
    only: list[str] | None = None,
    pull: bool = False,
    at: datetime | None = None,
) -> firing.Fired:
    with db.session() as s:
        return firing.fire(s, s.get_one(Trigger, trigger_id), only=only, pull=pull, at=at)


def set_status(db: Database, deployment_id: str, status: DeploymentStatus) -> None:
    with db.session() as s:
        s.get_one(Deployment, deployment_id).status = status


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


# --- joining a queued deployment --------------------------------------------------------


@pytest.mark.parametrize("pull", [False, True])
def test_a_firing_joins_the_deployment_still_queued_and_writes_nothing_new(
    shop: Database, registry: Registry, push: str, pull: bool
) -> None:
    """However often a trigger fires before the workers get to it, a workload has one
    queued deployment, and only the firing that queued it wrote an audit row."""
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    bind(shop, push, web, api)
    first = fire(shop, push, pull=pull, at=AT)
    for _ in range(3):
        again = fired(shop, push, pull=pull, at=AT)
        assert (again.deployments, again.joined) == (first, 2)
    assert len(deployments(shop)) == 2
    assert len(audit_rows(shop)) == 2


@pytest.mark.parametrize(
    "status",
    [DeploymentStatus.RUNNING, DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED],
)
def test_a_deployment_that_started_or_ended_is_never_joined(
    shop: Database, registry: Registry, push: str, status: DeploymentStatus
) -> None:
    """A running deploy read its inputs before the firing: the firing queues its own."""
    web = make(shop, registry).id
    bind(shop, push, web)
    (first,) = fire(shop, push)
    set_status(shop, first, status)
    again = fired(shop, push)
    assert again.joined == 0 and again.deployments != [first]
    assert sorted(d[1] for d in deployments(shop)) == sorted([status.value, "queued"])


def test_a_pulling_firing_makes_the_joined_deployment_pull(
    shop: Database, registry: Registry, push: str
) -> None:
    web = make(shop, registry).id
    bind(shop, push, web)
    (first,) = fire(shop, push, pull=False)
    assert fire(shop, push, pull=True) == [first]
    assert deployments(shop) == [(web, "queued", f"trigger:{push}", True)]
    assert fire(shop, push, pull=False) == [first]  # a later plain firing keeps the pull
    assert deployments(shop) == [(web, "queued", f"trigger:{push}", True)]


def test_any_queued_deployment_is_joined_and_the_oldest_of_several(
    shop: Database, registry: Registry, push: str
) -> None:
    """A manual deploy still queued serves the firing too; rows queued twice (before
    firings joined) are served by the queue head, the one the workers take first."""
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    bind(shop, push, web, api)
    with shop.session() as s:
        manual = deploys.enqueue(s, SYSTEM, web, "manual").id
        older, newer = deploys.enqueue_many(s, SYSTEM, [api, api], "manual")
    with shop.session() as s:  # the second of the two a second later
        s.get_one(Deployment, newer).created_at = AT + timedelta(seconds=1)
        s.get_one(Deployment, older).created_at = AT
    again = fired(shop, push)
    assert again.joined == 2
    assert sorted(again.deployments) == sorted([manual, older])


def test_only_joins_and_queues_only_the_workloads_it_names(
    shop: Database, registry: Registry, push: str
) -> None:
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    bind(shop, push, web, api)
    (web_first,) = fire(shop, push, only=[web])
    again = fired(shop, push, only=[api, web])
    assert again.joined == 1 and again.deployments[0] == web_first
    assert len(deployments(shop)) == 2


def test_a_pulling_firing_leaves_the_rows_of_workloads_it_does_not_fire_alone(
    shop: Database, registry: Registry, push: str
) -> None:
    """An image poll fires only the workloads whose registry moved (``only``): another
    bound workload's queued manual deploy keeps its reason and does not start pulling."""
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    bind(shop, push, web, api)
    with shop.session() as s:
        manual = deploys.enqueue(s, SYSTEM, web, "manual").id
    assert fired(shop, push, only=[api], pull=True).joined == 0
    assert fire(shop, push, only=[], pull=True) == []
    with shop.session() as s:
        row = s.get_one(Deployment, manual)
        assert (row.status, row.reason, row.pull) == ("queued", "manual", False)
