"""Capturing snapshots in the background: lock, quiesce, stream the archive, resume.

Runs under the workload's deploy lock, so no deploy changes the containers or
their mounts meanwhile. A crash leaves a ``capturing`` row and at most a
``.partial`` file; ``recover`` at start-up fails the row and removes the file,
and reconcile brings stopped or paused containers back. Never marks a snapshot
``ready`` before its archive is complete, fsynced and in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from moorage import metrics
from moorage.deployer.views import WorkloadViews
from moorage.errors import DiskFull, EngineError, MoorageError
from moorage.plugins.spec import VolumeMount, WorkloadView
from moorage.runtime.engine import LABEL_WORKLOAD, Engine
from moorage.runtime.pins import open_checked
from moorage.services import captures, snapshot_hooks
from moorage.services import snapshots as snapshot_service
from moorage.services.locks import WorkloadLocks
from moorage.services.workloads import get as get_workload
from moorage.settings import Settings
from moorage.snapshots.archive import VolumeSource, write_archive
from moorage.snapshots.hooks import run as run_hook
from moorage.snapshots.quiesce import quiesced
from moorage.store.db import Database
from moorage.store.states import CaptureMode, SnapshotStatus
from moorage.volumes.paths import VOLUME_SCOPES

log = logging.getLogger("moorage.snapshots")
LOCK_WAIT_SECONDS = 600.0
PROGRESS_EVERY = 0.5
CUT_OFF = "Moorage stopped during the capture; nothing was kept"


class Snapshotter:
    """Runs captures, each on a thread of its own, under the workload's lock."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        engine: Engine,
        views: WorkloadViews,
        locks: WorkloadLocks,
        fault: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.views = views
        self.locks = locks
        self.fault = fault
        self.on_ready: Callable[[str], None] = lambda _snapshot_id: None
        """Called once a snapshot is ready (the off-site copier's wake-up)."""

    def recover(self) -> list[str]:
        """Fail captures a crash cut off and remove their partial files (each file before
        its row says ``failed``, in the transaction that says it)."""
        with self.db.session() as s:
            cut = captures.capturing(s, self.settings)
            for snapshot_id, path in cut:
                _remove_archive(path)
                captures.fail(
                    s, snapshot_id, "Moorage stopped during the capture; nothing was kept"
                )
            return [snapshot_id for snapshot_id, _ in cut]

    def start(self, snapshot_id: str) -> None:
        threading.Thread(
            target=self.capture, args=(snapshot_id,), name=f"capture-{snapshot_id}", daemon=True
        ).start()

    def capture(self, snapshot_id: str, *, hooks: bool = True) -> None:
        """Capture ``snapshot_id`` under its workload's lock: the ``before`` hook, the
        archive (containers quiesced by its mode), the ``after`` hook; the row ends
        ``ready`` or ``failed``. ``hooks=False`` leaves both hooks to the caller
        (``hook``): a recovery point runs them while its workloads run."""
        started = time.monotonic()
        with self.db.session() as s:
            order = captures.order(s, snapshot_id)
        if order is None:
            return
        workload_id, mode, names = order.workload_id, order.mode, order.volumes
        try:
            with self.locks.hold(workload_id, timeout=LOCK_WAIT_SECONDS):
                result = self._capture_locked(snapshot_id, workload_id, mode, names, hooks)
        except MoorageError as exc:
            self._fail(snapshot_id, exc.message)
            return
        except Exception as exc:
            full = self._disk_full(exc, workload_id, snapshot_id)
            if full is None:
                log.exception("capture %s crashed", snapshot_id)
                reason = f"internal error ({type(exc).__name__}); see the server log"
            else:
                log.warning("capture %s: %s", snapshot_id, full.message)
                reason = full.message
            self._fail(snapshot_id, reason)
            return
        metrics.SNAPSHOT_SECONDS.observe(time.monotonic() - started)
        metrics.SNAPSHOT_RESULTS.labels(SnapshotStatus.READY).inc()
        with self.db.session() as s:
            if not captures.ready(s, snapshot_id, result):
                # Deleted meanwhile: do not leave its file behind.
                snapshot_service.archive_path_for(self.settings, workload_id, snapshot_id).unlink(
                    missing_ok=True
                )
                return
            snapshot_service.prune(s, self.settings, workload_id)
        self.on_ready(snapshot_id)

    def _capture_locked(
        self,
        snapshot_id: str,
        workload_id: str,
        mode: CaptureMode,
        names: list[str],
        hooks: bool,
    ) -> captures.Written:
        with self.db.session() as s:
            view = self.views.view(s, workload_id)
            kept = _kept_hooks(s, workload_id) if hooks else None
        lines, note = _notes(snapshot_id)
        warnings: list[str] = []
        try:
            if kept is not None:
                failure = self._hook(workload_id, "before", kept, note)
                if failure is not None:
                    raise MoorageError(failure)
            written = self._write(snapshot_id, view, mode, names, note)
        finally:
            if kept is not None:
                after = self._hook(workload_id, "after", kept, note)
                if after is not None:
                    warnings.append(after)
            with self.db.session() as s:
                captures.add_log(s, snapshot_id, lines)
        if warnings:
            written = dataclasses.replace(written, warnings=[*written.warnings, *warnings])
        return written

    def hook(self, snapshot_id: str, phase: str) -> str | None:
        """Run the ``phase`` hook ("before" or "after") of ``snapshot_id``'s workload on
        its own, its lines added to the snapshot's log; the failure, or None (it passed,
        or there is none). A failed ``after`` is also added to the snapshot's warnings.
        For a recovery point (``snapshots/recovery_points.py``), which runs every
        ``before`` while its workloads run, captures them all quiesced with
        ``capture(hooks=False)``, and runs every ``after`` once they run again."""
        with self.db.session() as s:
            order = captures.order(s, snapshot_id)
        if order is None:
            return None
        lines, note = _notes(snapshot_id)
        with self.locks.hold(order.workload_id, timeout=LOCK_WAIT_SECONDS):
            with self.db.session() as s:
                kept = _kept_hooks(s, order.workload_id)
            failure = self._hook(order.workload_id, phase, kept, note)
        with self.db.session() as s:
            captures.add_log(s, snapshot_id, lines)
            if failure is not None and phase == "after":
                captures.add_warning(s, snapshot_id, failure)
        return failure

    def _hook(
        self,
        workload_id: str,
        phase: str,
        kept: tuple[snapshot_hooks.Hooks, str | None],
        note: Callable[[str], None],
    ) -> str | None:
        """Run the workload's ``phase`` hook of ``kept`` (``_kept_hooks``), if it has one;
        its failure, or None. Hooks the workload's grant does not cover run neither way:
        the ``before`` answers the refusal (noted), the ``after`` nothing."""
        hooks, refused = kept
        if refused is not None:
            if phase == "before":
                note(refused)
                return refused
            return None
        hook = hooks.before if phase == "before" else hooks.after
        if hook is None:
            return None
        return run_hook(self.engine, workload_id, phase, hook, hooks.timeout_s, note).failure

    def fail(self, snapshot_id: str, reason: str) -> None:
        """End ``snapshot_id`` ``failed`` with ``reason``, its files removed."""
        self._fail(snapshot_id, reason)

    def _write(
        self,
        snapshot_id: str,
        view: WorkloadView,
        mode: CaptureMode,
        names: list[str],
        note: Callable[[str], None],
    ) -> captures.Written:
        """Quiesce every container of the workload (every service of a stack), stream the
        chosen volumes into the archive, resume them. Each volume is read as the directory
        checked when the capture starts (``_checked_root``)."""
        chosen = [v for v in view.volumes if v.name in names]
        with contextlib.ExitStack() as held:
            sources = [
                VolumeSource(
                    index=index,
                    name=volume.name,
                    scope=volume.scope,
                    source=volume.source,
                    path=_checked_root(volume, held),
                )
                for index, volume in enumerate(chosen)
            ]
            return self._stream(snapshot_id, view, mode, sources, note)

    def _stream(
        self,
        snapshot_id: str,
        view: WorkloadView,
        mode: CaptureMode,
        sources: list[VolumeSource],
        note: Callable[[str], None],
    ) -> captures.Written:
        workload_id = view.id
        total = sum(_tree_bytes(v.path) for v in sources)
        with self.db.session() as s:
            captures.set_total(s, snapshot_id, total)
        engine = self.engine
        containers = (
            engine.containers({LABEL_WORKLOAD: workload_id}) if mode != CaptureMode.NONE else []
        )
        stop_timeout = int(view.config.get("stop_timeout", 10))
        dest = snapshot_service.archive_path_for(self.settings, workload_id, snapshot_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        progress = self._progress(snapshot_id)
        with quiesced(engine, containers, mode, stop_timeout=stop_timeout, log=note):
            written = write_archive(
                dest,
                {"id": view.id, "name": view.name, "kind": view.kind},
                sources,
                progress=progress,
                # Two compression workers: memory grows per worker (about 30 MiB each),
                # and the budget is 128 MiB at any size on any number of cores.
                threads=2,
            )
        metrics.SNAPSHOT_BYTES.inc(sum(v["bytes"] for v in written.manifest["volumes"]))
        return captures.Written(written.size, written.sha256, written.manifest, written.warnings)

    def _progress(self, snapshot_id: str) -> Callable[[int], None]:
        last = 0.0
        faulted = False

        def report(done: int) -> None:
            nonlocal last, faulted
            if not faulted and done > 0:
                faulted = True
                self.fault("snapshot.mid_capture")
            now = time.monotonic()
            if now - last < PROGRESS_EVERY:
                return
            last = now
            with self.db.session() as s:
                captures.set_progress(s, snapshot_id, done)

        return report

    def _disk_full(self, exc: Exception, workload_id: str, snapshot_id: str) -> DiskFull | None:
        """A full disk (or spent quota) said plainly, naming the snapshots' directory."""
        if not isinstance(exc, OSError):
            return None
        dest = snapshot_service.archive_path_for(self.settings, workload_id, snapshot_id)
        return DiskFull.of(
            exc,
            str(dest.parent),
            "e.g. delete old snapshots or keep fewer (keep_last), then capture again",
        )

    def _fail(self, snapshot_id: str, reason: str) -> None:
        metrics.SNAPSHOT_RESULTS.labels(SnapshotStatus.FAILED).inc()
        with self.db.session() as s:
            path = captures.archive_of(s, self.settings, snapshot_id)
            if path is not None:
                _remove_archive(path)
                captures.fail(s, snapshot_id, reason)


def _kept_hooks(s: Session, workload_id: str) -> tuple[snapshot_hooks.Hooks, str | None]:
    """The workload's capture hooks and, when its grant does not cover them, why
    (``snapshot_hooks.refusal``): read once for both phases of a capture."""
    workload = get_workload(s, workload_id)
    hooks = snapshot_hooks.of(workload.snapshot_hooks)
    return hooks, snapshot_hooks.refusal(s, workload, hooks)


def _notes(snapshot_id: str) -> tuple[list[str], Callable[[str], None]]:
    """A capture's log lines and the ``note`` that adds one (and logs it)."""
    lines: list[str] = []

    def note(line: str) -> None:
        lines.append(line)
        log.info("%s: %s", snapshot_id, line)

    return lines, note


def _remove_archive(path: Path) -> None:
    """Remove an archive and its ``.partial``, if either is there."""
    path.with_name(path.name + ".partial").unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def _checked_root(volume: VolumeMount, held: contextlib.ExitStack) -> Path:
    """Where the capture reads ``volume``: for a volume below a base, the directory that
    ``runtime/pins.open_checked`` reached (no component a link, below its base), held
    open in ``held`` and read through ``/proc/self/fd/<n>``, so a component swapped for a
    link after the check (by a ``before`` hook, a container) cannot make the capture read
    elsewhere; both passes of the writer open that directory. An ``absolute`` volume is
    the admin's path as given (its links are the admin's). Raises ``MoorageError``."""
    if volume.scope not in VOLUME_SCOPES:
        raise MoorageError(f"volume {volume.name}: scope {volume.scope} is not supported")
    if volume.scope == "absolute" or volume.base is None:
        if not volume.host_path.is_dir():
            raise MoorageError(f"volume {volume.name}: {volume.host_path} does not exist")
        return volume.host_path
    volume.host_path.mkdir(parents=True, exist_ok=True)
    try:
        fd = open_checked(volume.host_path, volume.base)
    except EngineError as exc:
        raise MoorageError(f"volume {volume.name}: {exc}") from None
    held.callback(os.close, fd)
    return Path(f"/proc/self/fd/{fd}")


def _tree_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (metadata only), each hard-linked inode
    once, as the archive stores them: the progress bar's total."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
