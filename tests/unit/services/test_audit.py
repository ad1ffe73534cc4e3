"""The audit log (services/audit.py) on the real store: a ``record`` is a row of its own,
or inside ``one_row`` a part of that one row; an action that fails writes none."""

from __future__ import annotations

import pytest

from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.store.db import Database
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, audit_rows

db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url

OLGA = Actor(user_id="us_olga", username="olga", role="operator", via="session")
UPDATE = AuditAction.WORKLOAD_UPDATE


def test_a_record_outside_one_row_is_a_row_of_its_own(db: Database) -> None:
    with db.session() as s:
        audit.record(s, ADA, UPDATE, "workload", "wl_1", {"fields": ["name"]})
        audit.record(s, OLGA, AuditAction.WORKLOAD_STOP, "workload", "wl_1")
    assert audit_rows(db) == [
        ("ada", "workload.update", "wl_1", {"via": "token", "fields": ["name"]}),
        ("olga", "workload.stop", "wl_1", {"via": "session"}),
    ]


def test_one_row_merges_its_records_and_credits_who_opened_it(db: Database) -> None:
    with db.session() as s, audit.one_row(s, OLGA, UPDATE, "workload", "wl_1"):
        audit.record(s, ADA, UPDATE, "workload", "wl_1", {"fields": ["config"]})
        audit.record(s, ADA, AuditAction.SNAPSHOT_PRUNE, "workload", "wl_1", {"pruned": 2})
    assert audit_rows(db) == [
        ("olga", "workload.update", "wl_1", {"via": "session", "fields": ["config"], "pruned": 2})
    ]


def test_a_record_about_another_object_is_kept_under_its_action(db: Database) -> None:
    with db.session() as s, audit.one_row(s, ADA, UPDATE, "workload", "wl_1"):
        audit.record(s, ADA, AuditAction.TRIGGER_CREATE, "trigger", "tr_1", {"name": "push"})
        audit.record(s, ADA, AuditAction.WORKLOAD_TRIGGER_BIND, "workload", "wl_1", {"n": 1})
    assert audit_rows(db) == [
        (
            "ada",
            "workload.update",
            "wl_1",
            {"via": "token", "trigger.create": {"trigger": "tr_1", "name": "push"}, "n": 1},
        )
    ]


def test_a_create_names_its_target_by_its_first_record(db: Database) -> None:
    with db.session() as s, audit.one_row(s, ADA, AuditAction.WORKLOAD_CREATE, "workload", None):
        audit.record(s, ADA, AuditAction.WORKLOAD_CREATE, "workload", "wl_new", {"name": "web"})
    assert audit_rows(db) == [("ada", "workload.create", "wl_new", {"via": "token", "name": "web"})]


def test_a_create_that_names_nothing_is_an_error(db: Database) -> None:
    with pytest.raises(RuntimeError, match="named no target"), db.session() as s:
        with audit.one_row(s, ADA, AuditAction.WORKLOAD_CREATE, "workload", None):
            pass
    assert audit_rows(db) == []


def test_a_failed_action_writes_no_row_and_frees_the_session(db: Database) -> None:
    with db.session() as s:
        with pytest.raises(ValueError), audit.one_row(s, ADA, UPDATE, "workload", "wl_1"):
            audit.record(s, ADA, UPDATE, "workload", "wl_1", {"fields": ["name"]})
            raise ValueError("the step failed")
        assert audit.ONE_ROW not in s.info
        audit.record(s, ADA, AuditAction.WORKLOAD_STOP, "workload", "wl_1")
    assert [r[1] for r in audit_rows(db)] == ["workload.stop"]


def test_one_row_cannot_open_inside_another(db: Database) -> None:
    with db.session() as s, audit.one_row(s, ADA, UPDATE, "workload", "wl_1"):
        with pytest.raises(RuntimeError, match="cannot open another"):
            with audit.one_row(s, ADA, UPDATE, "workload", "wl_2"):
                pass  # pragma: no cover
        audit.record(s, ADA, UPDATE, "workload", "wl_1", {"kept": True})
    assert audit_rows(db) == [("ada", "workload.update", "wl_1", {"via": "token", "kept": True})]


def test_entries_newest_first_with_filters_and_paging(db: Database) -> None:
    with db.session() as s:
        for i in range(5):
            audit.record(s, ADA, UPDATE, "workload", f"wl_{i % 2}", {"i": i})
        audit.record(s, ADA, AuditAction.TRIGGER_DELETE, "trigger", "wl_0", {"i": 5})
    with db.session() as s:
        everything = audit.entries(s)
        assert [e.details["i"] for e in everything] == [5, 4, 3, 2, 1, 0]
        assert [e.details["i"] for e in audit.entries(s, limit=2)] == [5, 4]
        page = audit.entries(s, limit=2, before=everything[1].id)
        assert [e.details["i"] for e in page] == [3, 2]
        of_wl_0 = audit.entries(s, target_type="workload", target_id="wl_0")
        assert [e.details["i"] for e in of_wl_0] == [4, 2, 0]
        assert [e.details["i"] for e in audit.entries(s, target_type="trigger")] == [5]
        assert audit.entries(s, target_id="wl_9") == []
