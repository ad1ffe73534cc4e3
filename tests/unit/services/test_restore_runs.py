"""The ``restores`` rows a restore writes (services/restore_runs.py), on the real store:
accepted with one audit row, its phases, how it ended (a row another path ended is left
as it is), what recovery decided, and where the replaced data is kept."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from moorage.errors import NotFound
from moorage.plugins.registry import Registry
from moorage.services import restore_runs as runs
from moorage.store.db import Database
from moorage.store.states import (
    DeploymentStatus,
    RestorePhase,
    RestoreStatus,
    SnapshotOrigin,
    SnapshotStatus,
    SwapMethod,
)
from moorage.store.tables import AuditEntry, Deployment, Restore, Snapshot
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, audit_rows, make

db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop


@pytest.fixture
def web(shop: Database, registry: Registry) -> str:
    """A workload with a ready snapshot ``sn_1``, an accepted restore ``rs_1`` of it, and
    no audit rows."""
    workload_id = make(shop, registry).id
    with shop.session() as s:
        s.add(
            Snapshot(
                id="sn_1",
                workload_id=workload_id,
                origin=SnapshotOrigin.MANUAL,
                mode="stop",
                status=SnapshotStatus.READY,
                volumes=["v0"],
            )
        )
        s.flush()
        runs.create(s, ADA, "rs_1", workload_id, "sn_1", ["v0"], 100)
        s.execute(delete(AuditEntry))
    return workload_id


def row(db: Database, restore_id: str = "rs_1") -> Restore:
    with db.session() as s:
        found = s.get_one(Restore, restore_id)
        s.expunge(found)
        return found


def test_create_is_running_queued_with_one_audit_row(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.create(s, ADA, "rs_2", web, "sn_1", ["v0", "v1"], 2048)
    made = row(shop, "rs_2")
    assert (made.status, made.phase, made.volumes, made.total_bytes) == (
        "running",
        "queued",
        ["v0", "v1"],
        2048,
    )
    assert (made.swap, made.staging, made.error, made.finished_at) == ("", [], None, None)
    assert audit_rows(shop) == [
        (
            "ada",
            "snapshot.restore",
            web,
            {"via": "token", "restore": "rs_2", "snapshot": "sn_1", "volumes": ["v0", "v1"]},
        )
    ]


def test_running_and_get(shop: Database, registry: Registry, web: str) -> None:
    other = make(shop, registry, name="other").id
    with shop.session() as s:
        assert runs.running(s, web) == "rs_1"
        assert runs.running(s, other) is None
        assert runs.get(s, web, "rs_1").snapshot_id == "sn_1"
        with pytest.raises(NotFound):
            runs.get(s, other, "rs_1")  # not that workload's
        with pytest.raises(NotFound):
            runs.get(s, web, "rs_missing")
        runs.finish(s, "rs_1", RestoreStatus.SUCCEEDED)
    with shop.session() as s:
        assert runs.running(s, web) is None


def test_ready_snapshot_only_while_ready(shop: Database, web: str) -> None:
    with shop.session() as s:
        found = runs.ready_snapshot(s, "rs_1")
        assert found is not None and found.id == "sn_1"
        s.get_one(Snapshot, "sn_1").status = SnapshotStatus.FAILED
    with shop.session() as s:
        assert runs.ready_snapshot(s, "rs_1") is None
        s.execute(delete(Snapshot).where(Snapshot.id == "sn_1"))
    with shop.session() as s:
        assert runs.ready_snapshot(s, "rs_1") is None


def test_prepare_and_phases(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.prepare(s, "rs_1", SwapMethod.EXCHANGE, ["/x/.rs_1.v0"])
        runs.set_phase(s, "rs_1", RestorePhase.EXTRACT, progress_bytes=40)
    made = row(shop)
    assert (made.swap, made.staging, made.phase, made.progress_bytes) == (
        "exchange",
        ["/x/.rs_1.v0"],
        "extract",
        40,
    )
    assert made.status == "running"
    with shop.session() as s:
        assert runs.staging_of(s, "rs_1") == ["/x/.rs_1.v0"]
        assert runs.staging_of(s, "rs_missing") is None


def test_refuse_ends_it_failed(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.refuse(s, "rs_1", "the snapshot is gone")
    made = row(shop)
    assert (made.status, made.phase, made.error) == ("failed", "done", "the snapshot is gone")
    assert made.finished_at is not None
    assert audit_rows(shop) == []


def test_finish_keeps_an_earlier_error_and_leaves_an_ended_row(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.note(s, "rs_1", "one volume kept aside")
        runs.finish(s, "rs_1", RestoreStatus.SUCCEEDED)
    made = row(shop)
    assert (made.status, made.phase, made.error) == ("succeeded", "done", "one volume kept aside")
    ended_at = made.finished_at
    assert ended_at is not None
    with shop.session() as s:
        runs.finish(s, "rs_1", RestoreStatus.FAILED, "too late")
        runs.rolled_forward(s, "rs_1")
        runs.finish(s, "rs_missing", RestoreStatus.FAILED)  # a gone row: nothing to do
    again = row(shop)
    assert (again.status, again.error, again.finished_at) == ("succeeded", made.error, ended_at)


def test_finish_with_an_error_replaces_the_noted_one(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.note(s, "rs_1", "noted")
        runs.finish(s, "rs_1", RestoreStatus.FAILED, "the swap failed")
    assert (row(shop).status, row(shop).error) == ("failed", "the swap failed")


def test_rolled_forward_succeeds_a_running_row(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.rolled_forward(s, "rs_1")
    made = row(shop)
    assert (made.status, made.phase, made.error) == ("succeeded", "done", None)


def test_rolled_back_keeps_the_first_end_time(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.finish(s, "rs_1", RestoreStatus.FAILED, "the swap failed")
    ended_at = row(shop).finished_at
    with shop.session() as s:
        runs.rolled_back(s, "rs_1", "every volume is as it was")
        runs.rolled_back(s, "rs_missing", "nothing")
    made = row(shop)
    assert (made.status, made.phase, made.error) == (
        "rolled_back",
        "done",
        "every volume is as it was",
    )
    assert made.finished_at == ended_at


@pytest.mark.parametrize(
    ("status", "noted", "expected"),
    [
        (
            DeploymentStatus.FAILED,
            None,
            "the workload did not come up healthy after it (deployment dp_1): no health",
        ),
        (
            DeploymentStatus.FAILED,
            "kept aside",
            "kept aside; the workload did not come up "
            "healthy after it (deployment dp_1): no health",
        ),
        (DeploymentStatus.SUCCEEDED, "kept aside", "kept aside"),
        (DeploymentStatus.SUCCEEDED, None, None),
    ],
)
def test_note_unhealthy_adds_a_failed_redeploy_only(
    shop: Database, web: str, status: DeploymentStatus, noted: str | None, expected: str | None
) -> None:
    with shop.session() as s:
        s.add(
            Deployment(
                id="dp_1", workload_id=web, reason="restore", status=status, error="no health"
            )
        )
        if noted is not None:
            runs.note(s, "rs_1", noted)
    with shop.session() as s:
        runs.note_unhealthy(s, "rs_1", "dp_1")
        runs.note_unhealthy(s, "rs_1", "dp_missing")
    assert row(shop).error == expected


def test_unjournaled_and_cut_off(shop: Database, web: str) -> None:
    with shop.session() as s:
        runs.create(s, ADA, "rs_2", web, "sn_1", ["v0"], 1)
        runs.create(s, ADA, "rs_3", web, "sn_1", ["v0"], 1)
        runs.prepare(s, "rs_2", SwapMethod.RENAME, ["/a", "/b"])
        runs.finish(s, "rs_3", RestoreStatus.SUCCEEDED)
    with shop.session() as s:
        assert sorted(runs.unjournaled(s, set())) == [("rs_1", []), ("rs_2", ["/a", "/b"])]
        assert runs.unjournaled(s, {"rs_1"}) == [("rs_2", ["/a", "/b"])]
        runs.cut_off(s, "rs_2")
    made = row(shop, "rs_2")
    assert (made.status, made.phase, made.error) == ("failed", "done", runs.CUT_OFF)
    assert made.finished_at is not None


def test_packed_records_where_the_replaced_data_went(shop: Database, web: str) -> None:
    with shop.session() as s:
        assert not runs.kept_any(s, "rs_1")
        assert runs.kept_any(s, "rs_missing")  # a gone row: assume kept
        runs.packed(s, "rs_1", "sn_pre", ["/keep/v0"], "the pack failed")
    made = row(shop)
    assert (made.pre_restore_snapshot_id, made.kept_paths, made.kept_reason) == (
        "sn_pre",
        ["/keep/v0"],
        "the pack failed",
    )
    with shop.session() as s:
        assert runs.kept_any(s, "rs_1")
        runs.packed(s, "rs_1", None, [], None)
        runs.packed(s, "rs_missing", "sn_x", [], None)
    again = row(shop)
    assert (again.pre_restore_snapshot_id, again.kept_paths, again.kept_reason) == (
        "sn_pre",  # None keeps the snapshot already named
        [],
        None,
    )
    assert audit_rows(shop) == []
