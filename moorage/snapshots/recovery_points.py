"""Recovery points (SPEC section 10): a whole project stage captured at one instant and
restored together, built from the per-workload primitives (``Snapshotter.capture``,
``RestoreEngine.request``/``run``). The rows are ``services/recovery_points.py``'s.

    capture   every workload's lock (in id order), every workload's ``before`` hook
              while all run, every workload quiesced (stop or pause), each captured in
              turn (its own snapshot row), all resumed, every ``after`` hook, then the
              locks let go (mode ``none``: each captured with its hooks, as alone)
    restore   every workload's lock, every pre-flight (``RestoreEngine.request``) in one
              transaction: one refusal and nothing is accepted, no workload stopped; then
              the restores run one after the other (fault point
              ``recovery_point.after_restore.<n>`` after each); a part that fails stops
              the rest, which end ``failed`` untouched

Crash safety is each part's: a restore has its journal (all old or all new per workload,
``snapshots/restore/recovery.py``), a capture its ``Snapshotter.recover``. ``recover``
then settles the points from their parts' rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from sqlalchemy.orm import Session

from moorage.deployer.views import WorkloadViews
from moorage.errors import Conflict, MoorageError, PreconditionRequired
from moorage.plugins.spec import WorkloadView
from moorage.runtime.engine import LABEL_WORKLOAD, Engine
from moorage.security.roles import Actor
from moorage.services import audit, workloads
from moorage.services import recovery_points as points
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.snapshots.capture import Snapshotter
from moorage.snapshots.quiesce import quiesced
from moorage.snapshots.restore import RestoreEngine
from moorage.store.db import Database
from moorage.store.states import CaptureMode, RestoreStatus, SnapshotStatus

log = logging.getLogger("moorage.recovery_points")
LOCK_WAIT_SECONDS = 600.0
"""How long a capture waits for every workload's lock (a long deploy of one of them)."""
REQUEST_LOCK_WAIT_SECONDS = 60.0
CONFIRM = "X-Confirm-Restore"


class RecoveryPoints:
    """Captures and restores recovery points; built once by ``server.py``."""

    def __init__(
        self,
        db: Database,
        engine: Engine,
        views: WorkloadViews,
        locks: WorkloadLocks,
        snapshotter: Snapshotter,
        restorer: RestoreEngine,
        fault: Callable[[str], None],
    ) -> None:
        self.db = db
        self.engine = engine
        self.views = views
        self.locks = locks
        self.snapshotter = snapshotter
        self.restorer = restorer
        self.fault = fault

    # --- capture ------------------------------------------------------------------

    def start_capture(self, point_id: str) -> None:
        threading.Thread(
            target=self.capture, args=(point_id,), name=f"rp-{point_id}", daemon=True
        ).start()

    def capture(self, point_id: str) -> None:
        """All quiesced, all captured, all resumed; then the point is settled."""
        with self.db.session() as s:
            point = points.load(s, point_id)
            if point is None:
                return
            items = [dict(i) for i in point.items]
            mode = CaptureMode(point.mode)
            views = {i["workload_id"]: self.views.view(s, i["workload_id"]) for i in items}
        try:
            with ExitStack() as held:
                for workload_id in sorted(views):
                    held.enter_context(self.locks.hold(workload_id, timeout=LOCK_WAIT_SECONDS))
                if mode == CaptureMode.NONE:
                    for item in items:
                        self.snapshotter.capture(item["snapshot_id"])  # re-enters the lock
                else:
                    self._capture_quiesced(items, views, mode)
        except MoorageError as exc:
            self._fail_parts(point_id, exc.message)
        except Exception:
            log.exception("recovery point %s crashed", point_id)
            self._fail_parts(point_id, "internal error; see the server log")
        with self.db.session() as s:
            points.settle_capture(s, point_id)

    def _capture_quiesced(
        self, items: list[dict[str, Any]], views: dict[str, WorkloadView], mode: CaptureMode
    ) -> None:
        """Every workload's ``before`` hook while all run (a hook runs in its running
        container: once they were all stopped first, every ``before`` failed with "no
        running container"), then all quiesced at once and captured without their
        hooks, then all resumed and every ``after`` hook run. A part whose ``before``
        failed ends ``failed`` with that reason and is not captured; its ``after`` still
        runs, as a single capture's does."""
        refused = {}
        for item in items:
            failure = self.snapshotter.hook(item["snapshot_id"], "before")
            if failure is not None:
                refused[item["snapshot_id"]] = failure
        try:
            with ExitStack() as still:
                for workload_id in sorted(views):
                    view = views[workload_id]
                    still.enter_context(
                        quiesced(
                            self.engine,
                            self.engine.containers({LABEL_WORKLOAD: workload_id}),
                            mode,
                            stop_timeout=int(view.config.get("stop_timeout", 10)),
                            log=_logger(view.name),
                        )
                    )
                for item in items:
                    snapshot_id = item["snapshot_id"]
                    if snapshot_id in refused:
                        self.snapshotter.fail(snapshot_id, refused[snapshot_id])
                    else:
                        self.snapshotter.capture(snapshot_id, hooks=False)
        finally:
            for item in items:
                self.snapshotter.hook(item["snapshot_id"], "after")

    def _fail_parts(self, point_id: str, reason: str) -> None:
        with self.db.session() as s:
            points.fail_capturing(s, point_id, reason)

    # --- restore ------------------------------------------------------------------

    def request_restore(
        self, s: Session, actor: Actor, slug: str, point_id: str, confirm: str | None
    ) -> list[dict[str, Any]]:
        """Accept a restore of the whole point (the caller commits, then ``start_restore``),
        or refuse it with nothing accepted and no workload stopped: 428
        ``confirmation_required`` (``X-Confirm-Restore: <slug>/<stage>``), 404, 409
        ``not_ready``, ``restore_running``, ``workload_busy``, and the first refusal of
        any workload's pre-flight, naming the workload."""
        point = points.get(s, slug, point_id)
        expected = f"{slug}/{point.stage}"
        if confirm != expected:
            said = "is missing" if confirm is None else f"says {confirm!r}"
            raise PreconditionRequired(
                f"restoring a recovery point replaces the live data of every workload of "
                f"{expected}: send the header '{CONFIRM}: {expected}' (it {said})",
                code="confirmation_required",
            )
        if point.status != SnapshotStatus.READY:
            raise Conflict(f"recovery point {point_id} is {point.status}", code="not_ready")
        if point.restore_status == RestoreStatus.RUNNING:
            raise Conflict("this recovery point is being restored", code="restore_running")
        items = [dict(i) for i in point.items]
        accepted: list[str] = []
        parts: list[dict[str, Any]] = []
        try:
            with ExitStack() as held:
                for item in sorted(items, key=lambda i: i["workload_id"]):
                    held.enter_context(
                        self.locks.hold(item["workload_id"], timeout=REQUEST_LOCK_WAIT_SECONDS)
                    )
                s.expire_all()
                point = points.get(s, slug, point_id)
                with audit.one_row(
                    s, actor, AuditAction.RECOVERY_POINT_RESTORE, "recovery_point", point_id
                ):
                    for item in items:
                        workloads.get(s, item["workload_id"])
                        try:
                            row = self.restorer.request(
                                s, actor, item["workload_id"], item["snapshot_id"], None
                            )
                        except MoorageError as exc:
                            exc.message = f"workload {item['name']!r}: {exc.message}"
                            raise
                        accepted.append(item["workload_id"])
                        parts.append(
                            {
                                "workload_id": item["workload_id"],
                                "name": item["name"],
                                "restore_id": row.id,
                            }
                        )
                    points.begin_restore(s, actor, point, parts)
                s.commit()
        except BaseException:
            s.rollback()
            for workload_id in accepted:
                self.restorer.forget(workload_id)
            raise
        return parts

    def start_restore(self, point_id: str, parts: list[dict[str, Any]]) -> None:
        threading.Thread(
            target=self.restore, args=(point_id, parts), name=f"rp-restore-{point_id}", daemon=True
        ).start()

    def restore(self, point_id: str, parts: list[dict[str, Any]]) -> None:
        """Run the accepted parts in order; a part that does not succeed stops the rest."""
        stopped: str | None = None
        for n, part in enumerate(parts):
            if stopped is not None:
                with self.db.session() as s:
                    points.fail_part(s, part["restore_id"], stopped)
                self.restorer.forget(part["workload_id"])
                continue
            self.restorer.run(part["restore_id"])
            self.fault(f"recovery_point.after_restore.{n}")
            with self.db.session() as s:
                row = self.restorer.get(s, part["workload_id"], part["restore_id"])
                if row.status != RestoreStatus.SUCCEEDED:
                    stopped = f"not started: the restore of {part['name']!r} ended {row.status}" + (
                        f" ({row.error})" if row.error else ""
                    )
        with self.db.session() as s:
            points.settle_restore(s, point_id)

    # --- start-up -----------------------------------------------------------------

    def recover(self) -> None:
        """After the snapshots' and restores' own recovery: settle every point a crash cut
        off from its parts' rows (each workload is already all old or all new)."""
        with self.db.session() as s:
            for point_id in points.capturing(s):
                points.settle_capture(s, point_id)
            for point_id in points.restoring(s):
                # A part still running here has a journal restore recovery could not
                # read (its row says why): the point fails, naming it.
                points.settle_restore(s, point_id, cut_off=True)


def _logger(name: str) -> Callable[[str], None]:
    """What the quiesce of workload ``name`` says, into the server log."""

    def say(line: str) -> None:
        log.info("%s: %s", name, line)

    return say
