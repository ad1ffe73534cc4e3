"""The rows a capture writes while it runs (``snapshots/capture.py``) and the pre-restore
snapshot a restore packs (``snapshots/restore/pack.py``): progress, ready, failed.

Requesting a capture (the row, the audit row) is ``services/snapshots.py``. These run
in short transactions of their own while the capture holds the workload's lock; a
snapshot is never ``ready`` before its archive is complete, fsynced and in place,
and the caller removes an archive's files before it marks the row ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moorage.services import snapshots as snapshot_service
from moorage.settings import Settings
from moorage.store.states import CaptureMode, SnapshotOrigin, SnapshotStatus
from moorage.store.tables import Snapshot


@dataclass(frozen=True)
class Order:
    """What a capture thread needs of its row."""

    workload_id: str
    mode: CaptureMode
    volumes: list[str]


@dataclass(frozen=True)
class Written:
    """An archive written in full: what the row keeps of it."""

    size: int
    sha256: str
    manifest: dict[str, Any]
    warnings: list[str]


def order(s: Session, snapshot_id: str) -> Order | None:
    """The workload, mode and volumes of a requested capture; None when it was deleted."""
    snap = s.get(Snapshot, snapshot_id)
    if snap is None:
        return None
    # Only an import has no mode, and nothing captures an import.
    return Order(snap.workload_id, CaptureMode(snap.mode), list(snap.volumes))


def capturing(s: Session, settings: Settings) -> list[tuple[str, Path]]:
    """``(snapshot id, archive path)`` of every ``capturing`` row: at start-up, the
    captures (and pre-restore packs) a crash cut off."""
    rows = s.scalars(select(Snapshot).where(Snapshot.status == SnapshotStatus.CAPTURING))
    return [(snap.id, snapshot_service.archive_path(settings, snap)) for snap in rows]


def archive_of(s: Session, settings: Settings, snapshot_id: str) -> Path | None:
    """Where the snapshot's archive is (or would be); None when the row is gone."""
    snap = s.get(Snapshot, snapshot_id)
    return None if snap is None else snapshot_service.archive_path(settings, snap)


def set_total(s: Session, snapshot_id: str, total: int) -> None:
    """The bytes the capture will read: the progress bar's end."""
    s.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(total_bytes=total))


def set_progress(s: Session, snapshot_id: str, done: int) -> None:
    """The bytes read so far."""
    s.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(progress_bytes=done))


def add_log(s: Session, snapshot_id: str, lines: list[str]) -> None:
    """Add ``lines`` to the capture's log: what its hooks ran and printed (SPEC 10). A
    recovery point writes it in parts (the hooks apart from the capture)."""
    snap = s.get(Snapshot, snapshot_id)
    if snap is not None and lines:
        snap.log = "\n".join([snap.log, *lines] if snap.log else lines)


def add_warning(s: Session, snapshot_id: str, warning: str) -> None:
    """Add ``warning`` to the snapshot's (an ``after`` hook that failed once the snapshot
    was already kept: a recovery point's)."""
    snap = s.get(Snapshot, snapshot_id)
    if snap is not None:
        snap.warnings = [*snap.warnings, warning]


def fail(s: Session, snapshot_id: str, reason: str) -> None:
    """Mark the snapshot ``failed`` with ``reason`` (``snapshots.finish``); a deleted one
    is skipped. The caller removed its files first."""
    snap = s.get(Snapshot, snapshot_id)
    if snap is not None:
        snapshot_service.finish(s, snap, status=SnapshotStatus.FAILED, error=reason)


def ready(
    s: Session,
    snapshot_id: str,
    written: Written,
    *,
    total_bytes: int | None = None,
) -> bool:
    """Mark the snapshot ``ready`` with its archive's size, SHA-256, manifest and
    warnings; progress reads complete (``total_bytes``, when given, replaces the total).
    False when the row was deleted meanwhile (the caller removes the archive)."""
    snap = s.get(Snapshot, snapshot_id)
    if snap is None:
        return False
    snap.size, snap.sha256 = written.size, written.sha256
    snap.manifest, snap.warnings = written.manifest, written.warnings
    if total_bytes is not None:
        snap.total_bytes = total_bytes
    snap.progress_bytes = snap.total_bytes
    snapshot_service.finish(s, snap, status=SnapshotStatus.READY)
    return True


def begin_pre_restore(s: Session, snapshot_id: str, workload_id: str, volumes: list[str]) -> None:
    """A ``capturing`` pre-restore snapshot (mode ``stop``) of ``volumes``: the data a
    restore replaced, being packed."""
    s.add(
        Snapshot(
            id=snapshot_id,
            workload_id=workload_id,
            origin=SnapshotOrigin.PRE_RESTORE,
            mode=CaptureMode.STOP,
            status=SnapshotStatus.CAPTURING,
            volumes=volumes,
        )
    )


def is_ready(s: Session, snapshot_id: str) -> bool:
    """Whether the snapshot exists and is ``ready``."""
    snap = s.get(Snapshot, snapshot_id)
    return snap is not None and snap.status == SnapshotStatus.READY
