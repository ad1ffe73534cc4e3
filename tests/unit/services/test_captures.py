"""The rows a running capture writes (services/captures.py), on the real store: progress,
``ready`` with what the archive holds, ``failed`` with its reason, a pre-restore row; a
row deleted meanwhile is skipped, and none of these writes an audit row (the request
did)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select

from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM
from moorage.services import captures, snapshots, volumes
from moorage.services.captures import Written
from moorage.services.volumes import VolumeSpec
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.states import CaptureMode
from moorage.store.tables import AuditEntry, Snapshot
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import audit_rows, make

db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop

WRITTEN = Written(size=1234, sha256="ab" * 32, manifest={"volumes": ["v0"]}, warnings=["w"])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
def workload(shop: Database, registry: Registry, settings: Settings) -> str:
    """A workload with volumes ``v0`` and ``v1``; no audit rows."""
    workload_id = make(shop, registry).id
    with shop.session() as s:
        volumes.replace(
            s,
            SYSTEM,
            settings,
            registry,
            workload_id,
            [VolumeSpec(f"v{i}", "stage", f"web/v{i}", f"/v{i}") for i in range(2)],
        )
        s.execute(delete(AuditEntry))
    return workload_id


def requested(db: Database, registry: Registry, workload_id: str, mode: str = "pause") -> str:
    """A capture requested as the route does; its audit row is forgotten."""
    with db.session() as s:
        snapshot_id = snapshots.request_capture(
            s, SYSTEM, registry, workload_id, volumes=["v1"], mode=mode
        ).id
        s.execute(delete(AuditEntry))
    return snapshot_id


def snap(db: Database, snapshot_id: str) -> Snapshot:
    with db.session() as s:
        found = s.get_one(Snapshot, snapshot_id)
        s.expunge(found)
        return found


def forget(db: Database, snapshot_id: str) -> None:
    with db.session() as s:
        s.execute(delete(Snapshot).where(Snapshot.id == snapshot_id))


def test_order_is_what_the_request_asked(shop: Database, registry: Registry, workload: str) -> None:
    snapshot_id = requested(shop, registry, workload)
    with shop.session() as s:
        got = captures.order(s, snapshot_id)
        assert got == captures.Order(workload, CaptureMode.PAUSE, ["v1"])
        assert captures.order(s, "sn_missing") is None


def test_progress_then_ready_keeps_the_archive_facts(
    shop: Database, registry: Registry, workload: str
) -> None:
    snapshot_id = requested(shop, registry, workload)
    with shop.session() as s:
        captures.set_total(s, snapshot_id, 1000)
        captures.set_progress(s, snapshot_id, 400)
    running = snap(shop, snapshot_id)
    assert (running.status, running.total_bytes, running.progress_bytes) == ("capturing", 1000, 400)
    with shop.session() as s:
        assert not captures.is_ready(s, snapshot_id)
        assert captures.ready(s, snapshot_id, WRITTEN)
    done = snap(shop, snapshot_id)
    assert done.status == "ready" and done.error is None and done.finished_at is not None
    assert (done.size, done.sha256, done.manifest, done.warnings) == (
        1234,
        "ab" * 32,
        {"volumes": ["v0"]},
        ["w"],
    )
    assert done.progress_bytes == done.total_bytes == 1000  # reads complete
    with shop.session() as s:
        assert captures.is_ready(s, snapshot_id)
    assert audit_rows(shop) == []


def test_ready_may_replace_the_total(shop: Database, registry: Registry, workload: str) -> None:
    snapshot_id = requested(shop, registry, workload)
    with shop.session() as s:
        captures.set_total(s, snapshot_id, 1000)
    with shop.session() as s:
        captures.ready(s, snapshot_id, WRITTEN, total_bytes=1500)
    done = snap(shop, snapshot_id)
    assert (done.total_bytes, done.progress_bytes) == (1500, 1500)


def test_fail_keeps_the_reason(shop: Database, registry: Registry, workload: str) -> None:
    snapshot_id = requested(shop, registry, workload)
    with shop.session() as s:
        captures.fail(s, snapshot_id, "disk full")
    failed = snap(shop, snapshot_id)
    assert (failed.status, failed.error) == ("failed", "disk full")
    assert failed.finished_at is not None and failed.size == 0
    with shop.session() as s:
        assert not captures.is_ready(s, snapshot_id)
    assert audit_rows(shop) == []


def test_a_row_deleted_meanwhile_is_skipped(
    shop: Database, registry: Registry, workload: str, settings: Settings
) -> None:
    snapshot_id = requested(shop, registry, workload)
    forget(shop, snapshot_id)
    with shop.session() as s:
        assert captures.ready(s, snapshot_id, WRITTEN) is False
        captures.fail(s, snapshot_id, "gone")
        assert captures.archive_of(s, settings, snapshot_id) is None
        assert not captures.is_ready(s, snapshot_id)
    with shop.session() as s:
        assert s.scalars(select(Snapshot)).all() == []


def test_capturing_lists_the_rows_a_crash_cut_off(
    shop: Database, registry: Registry, workload: str, settings: Settings
) -> None:
    cut, done, failed = (requested(shop, registry, workload, "none") for _ in range(3))
    with shop.session() as s:
        captures.ready(s, done, WRITTEN)
        captures.fail(s, failed, "x")
    with shop.session() as s:
        archive = settings.snapshots_dir / workload / f"{cut}.tar.zst"
        assert captures.capturing(s, settings) == [(cut, archive)]
        assert captures.archive_of(s, settings, cut) == archive


def test_a_pre_restore_row_is_a_stop_capture_of_its_volumes(shop: Database, workload: str) -> None:
    with shop.session() as s:
        captures.begin_pre_restore(s, "sn_pre", workload, ["v0", "v1"])
    pre = snap(shop, "sn_pre")
    assert (pre.origin, pre.mode, pre.status, pre.volumes) == (
        "pre-restore",
        "stop",
        "capturing",
        ["v0", "v1"],
    )
    with shop.session() as s:
        assert captures.order(s, "sn_pre") == captures.Order(
            workload, CaptureMode.STOP, ["v0", "v1"]
        )
    assert audit_rows(shop) == []
