"""Reconcile: bring each workload to its desired state, on a loop and on request.

``converge`` brings a workload to its desired state (SPEC section 9): ``running``
brings the last good deployment back up, ``stopped`` stops whatever of it runs, and
nothing revives a stopped workload. ``observe`` reads the status the engine shows.
Every path takes the workload's lock (``services/locks.py``) first; the rows it
writes go through ``services/deployment_runs.py`` and ``services/audit.py``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from moorage.deployer.views import WorkloadViews
from moorage.errors import EngineError, EngineUnavailable, MoorageError
from moorage.plugins.registry import Registry
from moorage.plugins.spec import WorkloadView
from moorage.runtime.engine import LABEL_WORKLOAD, Engine
from moorage.security.roles import SYSTEM
from moorage.services import audit, deployment_runs, workloads
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.states import DesiredState, WorkloadStatus

log = logging.getLogger("moorage.deployer")


@dataclass(frozen=True)
class Converged:
    """What ``Reconciler.converge`` found and did."""

    status: WorkloadStatus
    changed: bool


def as_desired(status: str, desired: DesiredState) -> WorkloadStatus:
    """The status to record for what a kind's ``status`` reported. A stopped workload that
    runs nothing reads ``stopped``, never ``failed`` (an app stopped on purpose may exit
    non-zero on its way down). A word the kind is not allowed to say reads ``unknown``."""
    if desired == DesiredState.STOPPED and status != WorkloadStatus.RUNNING:
        return WorkloadStatus.STOPPED
    try:
        return WorkloadStatus(status)
    except ValueError:
        log.warning("a source kind reported the status %r, which is not one", status)
        return WorkloadStatus.UNKNOWN


class Reconciler:
    """The reconcile loop and the one ``converge`` the lifecycle routes use too."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        engine: Engine,
        views: WorkloadViews,
        locks: WorkloadLocks,
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.engine = engine
        self.views = views
        self.locks = locks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the ``reconciler`` thread; its first pass runs at once."""
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def observe(self, workload_id: str) -> WorkloadStatus:
        """The workload's status as the engine shows it; ``unknown`` when it cannot tell.
        A workload stopped on purpose that runs nothing is ``stopped``, whatever its
        containers' exit codes."""
        try:
            with self.db.session() as s:
                view = self.views.view(s, workload_id)
                desired = workloads.get(s, workload_id).desired_state
            status = self.registry.source(view.kind).status(self.views.context(view))
        except MoorageError:  # EngineUnavailable included
            return WorkloadStatus.UNKNOWN
        return as_desired(status, desired)

    def reconcile(self, workload_id: str, *, wait: float = 0) -> WorkloadStatus:
        """Fix drift for one workload; return its status. Skips a busy workload unless
        waiting (``deploying`` comes back). What it changed is audited as the system's
        doing (one ``workload.reconcile`` row)."""
        if not self.locks.acquire(workload_id, timeout=wait):
            return WorkloadStatus.DEPLOYING
        try:
            done = self.converge(workload_id)
            if done.changed:
                with self.db.session() as s:
                    audit.record(
                        s,
                        SYSTEM,
                        AuditAction.WORKLOAD_RECONCILE,
                        "workload",
                        workload_id,
                        {"status": done.status},
                    )
            return done.status
        finally:
            self.locks.release(workload_id)

    def converge(self, workload_id: str, *, restart: bool = False) -> Converged:
        """Bring the workload to its desired state and record the status it then has.

        ``running``: the last good deployment runs (``SourceKind.reconcile``); ``stopped``:
        every container of the workload is stopped, and nothing starts one. ``restart``
        stops a running workload's containers first. A workload that never deployed has
        nothing to observe or bring back. The caller holds the workload's lock and writes
        any audit row. Raises NotFound for an unknown workload.
        """
        with self.locks.hold(workload_id, timeout=0):  # re-entrant: the caller's own
            with self.db.session() as s:
                current = workloads.get(s, workload_id)
                desired, recorded = current.desired_state, current.status
                # Stopping needs no volume: a path gone bad must not keep it running.
                stopping = desired != DesiredState.RUNNING
                view = self.views.deployed_view(s, workload_id, removing=stopping)
            if view.artifact is None:
                return Converged(recorded, False)
            source = self.registry.source(view.kind)
            ctx = self.views.context(view)
            try:
                stopped = (
                    self._stop_all(view) if restart or desired != DesiredState.RUNNING else False
                )
                started = desired == DesiredState.RUNNING and source.reconcile(ctx)
                status = as_desired(source.status(ctx), desired)
                changed = stopped or started
            except EngineUnavailable:
                changed, status = False, WorkloadStatus.UNKNOWN
            except EngineError as exc:
                log.warning("reconcile of %s failed: %s", workload_id, exc.message)
                changed, status = False, WorkloadStatus.FAILED
            with self.db.session() as s:
                deployment_runs.record_status(s, workload_id, status)
            return Converged(status, changed)

    def _stop_all(self, view: WorkloadView) -> bool:
        """Stop every running container of the workload (by its label, whatever its kind),
        as a restore does; True when one was running."""
        running = [c for c in self.engine.containers({LABEL_WORKLOAD: view.id}) if c.running]
        stop_timeout = int(view.config.get("stop_timeout", 10))
        for c in running:
            self.engine.stop(c.id, stop_timeout)
            log.info("%s: stopped %s", view.id, c.name)
        return bool(running)

    def reconcile_all(self) -> None:
        """One pass over every workload that ever deployed, in creation order; a busy one
        is skipped, a failure of one is logged and the pass goes on."""
        with self.db.session() as s:
            ids = deployment_runs.deployed_workloads(s)
        for workload_id in ids:
            if self._stop.is_set():
                return
            try:
                self.reconcile(workload_id)
            except MoorageError as exc:
                log.warning("reconcile of %s: %s", workload_id, exc.message)
            except Exception:
                log.exception("reconcile of %s crashed", workload_id)

    def _loop(self) -> None:
        with self.db.priority.background():  # a webhook's answer goes first
            self._loop_body()

    def _loop_body(self) -> None:
        while not self._stop.is_set():
            started = datetime.now()
            self.reconcile_all()
            elapsed = (datetime.now() - started).total_seconds()
            self._stop.wait(max(0.5, self.settings.reconcile_seconds - elapsed))
