"""Standalone triggers and their bindings (services/triggers.py) on the real store: names
unique per kind, a webhook's secret kept but shown masked and its token shown to
operators only, a schedule's next firing set on every config change; each refusal writes
nothing, each change one audit row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound
from moorage.plugins.kind_config import MASK
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import triggers
from moorage.store.db import Database
from moorage.store.tables import AuditEntry, Binding, Trigger, utcnow
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, audit_rows, make

# The store fixtures of test_workloads: SQLite, and PostgreSQL when asked.
db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop

SECRET = "a-webhook-secret"
VIEWER = Actor(user_id="us_vic", username="vic", role="viewer", via="session")
OPERATOR = Actor(user_id="us_olga", username="olga", role="operator", via="session")
DAILY = {"cron": "0 3 * * *"}


def create(
    db: Database, registry: Registry, kind: str = "webhook", name: str = "push", config: Any = None
) -> str:
    with db.session() as s:
        return triggers.create(s, ADA, registry, kind=kind, name=name, config=config).id


def row(db: Database, trigger_id: str) -> Trigger:
    with db.session() as s:
        found = triggers.get(s, trigger_id)
        s.expunge(found)
        return found


def count(db: Database, table: type[Trigger] | type[Binding]) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def forget_audit(db: Database) -> None:
    with db.session() as s:
        s.execute(delete(AuditEntry))


def refused_create(
    db: Database,
    registry: Registry,
    error: type[MoorageError],
    code: str,
    **fields: Any,
) -> None:
    before, audited = count(db, Trigger), audit_rows(db)
    with pytest.raises(error) as caught:
        create(db, registry, **fields)
    assert caught.value.code == code
    assert count(db, Trigger) == before
    assert audit_rows(db) == audited


def test_a_webhook_gets_a_token_and_one_audit_row(shop: Database, registry: Registry) -> None:
    trigger_id = create(shop, registry, config={"secret": SECRET})
    made = row(shop, trigger_id)
    assert trigger_id.startswith("tr_")
    assert made.token is not None and len(made.token) >= 43  # 256 bits, url-safe
    assert made.config["secret"] == SECRET  # kept in clear for signature checks
    assert made.config["provider"] == "generic"  # the model's default is stored
    assert made.next_run_at is None
    assert audit_rows(shop) == [
        ("ada", "trigger.create", trigger_id, {"via": "token", "kind": "webhook", "name": "push"})
    ]
    assert SECRET not in repr(audit_rows(shop))


def test_shown_masks_the_secret_and_shows_the_token_to_operators_only(
    shop: Database, registry: Registry
) -> None:
    trigger_id = create(shop, registry, config={"secret": SECRET})
    with shop.session() as s:
        made = triggers.get(s, trigger_id)
        for_viewer = triggers.shown(s, registry, VIEWER, made)
        for_operator = triggers.shown(s, registry, OPERATOR, made)
    assert for_viewer.config["secret"] == MASK
    assert SECRET not in repr(for_viewer) and SECRET not in repr(for_operator)
    assert for_viewer.has_secret and for_operator.has_secret
    assert for_viewer.token is None
    assert for_operator.token == made.token
    assert for_operator.workloads == []


def test_a_schedule_has_no_token_and_its_next_firing(shop: Database, registry: Registry) -> None:
    before = utcnow()
    made = row(shop, create(shop, registry, kind="schedule", name="nightly", config=DAILY))
    assert made.token is None
    assert made.next_run_at is not None
    assert before < made.next_run_at.replace(tzinfo=before.tzinfo) <= before + timedelta(days=1)
    assert (made.next_run_at.hour, made.next_run_at.minute) == (3, 0)


@pytest.mark.parametrize("name", ["", "Push", "push_1", "-push", "p" * 64, "push me"])
def test_create_refuses_a_bad_name(shop: Database, registry: Registry, name: str) -> None:
    refused_create(shop, registry, InvalidInput, "invalid_slug", name=name)


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("webhook", {"secret": "short"}),
        ("webhook", {"provider": "svn"}),
        ("webhook", {"unknown": 1}),
        ("webhook", ["not", "an", "object"]),
        ("webhook", {"rate_limit_per_minute": 0}),
        ("schedule", {}),
        ("schedule", {"cron": "not a cron"}),
        ("schedule", {**DAILY, "timezone": "Mars/Olympus"}),
    ],
)
def test_create_refuses_a_bad_config(
    shop: Database, registry: Registry, kind: str, config: Any
) -> None:
    refused_create(shop, registry, InvalidInput, "invalid_config", kind=kind, config=config)


def test_create_refuses_an_unknown_kind(shop: Database, registry: Registry) -> None:
    refused_create(shop, registry, InvalidInput, "unknown_kind", kind="carrier-pigeon")


def test_names_are_unique_per_kind(shop: Database, registry: Registry) -> None:
    create(shop, registry)
    refused_create(shop, registry, Conflict, "duplicate")
    create(shop, registry, kind="schedule", name="push", config=DAILY)
    with shop.session() as s:
        assert [(t.kind, t.name) for t in triggers.list_filtered(s)] == [
            ("schedule", "push"),
            ("webhook", "push"),
        ]
        assert [t.kind for t in triggers.list_filtered(s, kind="webhook")] == ["webhook"]


def test_update_renames_and_patches_with_one_audit_row(shop: Database, registry: Registry) -> None:
    trigger_id = create(shop, registry, config={"secret": SECRET, "provider": "github"})
    forget_audit(shop)
    with shop.session() as s:
        triggers.update(
            s, ADA, registry, trigger_id, name="push2", config={"secret": MASK, "provider": None}
        )
    made = row(shop, trigger_id)
    assert made.name == "push2"
    assert made.config["secret"] == SECRET  # the mask echoed back keeps the secret
    assert made.config["provider"] == "generic"  # null drops it back to the default
    assert audit_rows(shop) == [
        ("ada", "trigger.update", trigger_id, {"via": "token", "fields": ["name", "config"]})
    ]


def test_a_schedule_change_moves_its_next_firing(shop: Database, registry: Registry) -> None:
    trigger_id = create(shop, registry, kind="schedule", name="nightly", config=DAILY)
    with shop.session() as s:
        triggers.update(s, ADA, registry, trigger_id, config={"cron": "30 5 * * *"})
    moved = row(shop, trigger_id).next_run_at
    assert moved is not None and (moved.hour, moved.minute) == (5, 30)


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"name": "Bad"}, InvalidInput, "invalid_slug"),
        ({"name": "taken"}, Conflict, "duplicate"),
        ({"config": ["x"]}, InvalidInput, "invalid_config"),
        ({"config": {"secret": "short"}}, InvalidInput, "invalid_config"),
        ({"name": "fresh", "config": {"provider": "svn"}}, InvalidInput, "invalid_config"),
    ],
)
def test_update_refusals_change_nothing(
    shop: Database,
    registry: Registry,
    fields: dict[str, Any],
    error: type[MoorageError],
    code: str,
) -> None:
    trigger_id = create(shop, registry, config={"secret": SECRET})
    create(shop, registry, name="taken")
    forget_audit(shop)
    with pytest.raises(error) as caught, shop.session() as s:
        triggers.update(s, ADA, registry, trigger_id, **fields)
    assert caught.value.code == code
    made = row(shop, trigger_id)
    assert (made.name, made.config["secret"]) == ("push", SECRET)
    assert audit_rows(shop) == []


def test_regenerating_the_token_replaces_it(shop: Database, registry: Registry) -> None:
    trigger_id = create(shop, registry)
    old = row(shop, trigger_id).token
    forget_audit(shop)
    with shop.session() as s:
        new = triggers.regenerate_token(s, ADA, registry, trigger_id).token
    assert new is not None and new != old
    assert row(shop, trigger_id).token == new
    assert audit_rows(shop) == [("ada", "trigger.token.regenerate", trigger_id, {"via": "token"})]


def test_a_trigger_without_a_token_has_none_to_regenerate(
    shop: Database, registry: Registry
) -> None:
    trigger_id = create(shop, registry, kind="schedule", name="nightly", config=DAILY)
    forget_audit(shop)
    with pytest.raises(InvalidInput) as caught, shop.session() as s:
        triggers.regenerate_token(s, ADA, registry, trigger_id)
    assert caught.value.code == "no_token"
    assert row(shop, trigger_id).token is None
    assert audit_rows(shop) == []


def test_bind_and_unbind(shop: Database, registry: Registry) -> None:
    web, api = make(shop, registry).id, make(shop, registry, name="api").id
    push = create(shop, registry)
    nightly = create(shop, registry, kind="schedule", name="nightly", config=DAILY)
    forget_audit(shop)
    with shop.session() as s:
        triggers.bind(s, ADA, web, push)
        triggers.bind(s, ADA, web, nightly)
        triggers.bind(s, ADA, api, push)
    with shop.session() as s:
        assert [t.name for t in triggers.bindings_of(s, web)] == ["nightly", "push"]
        assert sorted(triggers.bound_workloads(s, push)) == sorted([web, api])
    assert audit_rows(shop)[0] == (
        "ada",
        "workload.trigger.bind",
        web,
        {"via": "token", "trigger": push},
    )
    forget_audit(shop)
    with shop.session() as s:
        triggers.unbind(s, ADA, web, push)
    with shop.session() as s:
        assert triggers.bound_workloads(s, push) == [api]
    assert audit_rows(shop) == [
        ("ada", "workload.trigger.unbind", web, {"via": "token", "trigger": push})
    ]


def test_bind_refusals_write_nothing(shop: Database, registry: Registry) -> None:
    web = make(shop, registry).id
    push = create(shop, registry)
    with shop.session() as s:
        triggers.bind(s, ADA, web, push)
    forget_audit(shop)
    for workload_id, trigger_id, error, code in (
        (web, push, Conflict, "already_bound"),
        (web, "tr_missing", InvalidInput, "unknown_trigger"),
        ("wl_missing", push, NotFound, "not_found"),
    ):
        with pytest.raises(error) as caught, shop.session() as s:
            triggers.bind(s, ADA, workload_id, trigger_id)
        assert caught.value.code == code
    assert count(shop, Binding) == 1
    assert audit_rows(shop) == []


def test_unbinding_what_is_not_bound_is_not_found(shop: Database, registry: Registry) -> None:
    web = make(shop, registry).id
    push = create(shop, registry)
    forget_audit(shop)
    for workload_id in (web, "wl_missing"):
        with pytest.raises(NotFound), shop.session() as s:
            triggers.unbind(s, ADA, workload_id, push)
    with pytest.raises(NotFound), shop.session() as s:
        triggers.bindings_of(s, "wl_missing")
    assert audit_rows(shop) == []


def test_delete_takes_its_bindings_along(shop: Database, registry: Registry) -> None:
    web = make(shop, registry).id
    push, kept = create(shop, registry), create(shop, registry, name="kept")
    with shop.session() as s:
        triggers.bind(s, ADA, web, push)
        triggers.bind(s, ADA, web, kept)
    forget_audit(shop)
    with shop.session() as s:
        triggers.delete(s, ADA, push)
    with shop.session() as s:
        assert s.get(Trigger, push) is None
        assert [t.id for t in triggers.bindings_of(s, web)] == [kept]
    assert audit_rows(shop) == [
        ("ada", "trigger.delete", push, {"via": "token", "kind": "webhook", "name": "push"})
    ]
    with pytest.raises(NotFound), shop.session() as s:
        triggers.delete(s, ADA, push)
    assert len(audit_rows(shop)) == 1
