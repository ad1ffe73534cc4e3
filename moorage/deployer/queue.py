"""The deploy queue's workers: claim a queued deployment, run it under the workload's
lock, end its row; and ``redeploy``, the last good artifact again (a restore's step 7).

The database is the queue (``services/deployment_runs.py`` holds its rows): a row is
claimed by flipping ``queued`` to ``running`` in one UPDATE, so it runs once. A worker
takes a workload's lock with ``timeout=0`` and skips a busy workload, so one
workload's deploys never overlap and different workloads deploy in parallel.
Nothing here writes a row itself.

Idle workers look at the queue every ``IDLE_WAIT`` s (and at once when ``wake`` is
called), but ask the database only when it may hold something new: a look that found
nothing queued is good until a deployment row changes (``Database.generations["queue"]``,
bumped by every commit that wrote one). Four workers asking twice a second each were
most of an idle server's CPU (9 % of a core with no workload at all).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from moorage import metrics
from moorage.deployer.views import WorkloadViews, inputs_of
from moorage.errors import MoorageError
from moorage.plugins.registry import Registry
from moorage.services import deployment_runs, powers
from moorage.services import volumes as volume_service
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.states import DeploymentStatus, WorkloadStatus

log = logging.getLogger("moorage.deployer")

MAX_LOG_CHARS = 256 * 1024
IDLE_WAIT = 0.5
"""Seconds an idle worker sleeps between looks at the queue when nothing wakes it."""


class DeploymentLog:
    """Appends timestamped lines to a deployment's log as they happen, one short
    transaction each, up to ``MAX_LOG_CHARS``."""

    def __init__(self, db: Database, deployment_id: str) -> None:
        self._db = db
        self._id = deployment_id
        self._size = 0

    def __call__(self, line: str) -> None:
        if self._size > MAX_LOG_CHARS:
            return
        text = deployment_runs.stamped(line)
        if self._size + len(text) > MAX_LOG_CHARS:
            text = "... log truncated\n"
        self._size += len(text)
        with self._db.session() as s:
            deployment_runs.append_log(s, self._id, text)


class DeployQueue:
    """The worker threads and what each does with one deployment."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        views: WorkloadViews,
        locks: WorkloadLocks,
        observe: Callable[[str], WorkloadStatus],
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.views = views
        self.locks = locks
        self.observe = observe
        self.checkpoint: Callable[[str, str, Callable[[str], None]], None] | None = None
        """Called by a deploy before the kind acts (``snapshots.checkpoint.Checkpointer``):
        ``(workload id, deployment id, log line)``; raises to fail the deploy."""
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._empty_at: int | None = None
        """The queue generation at which a look found nothing queued (None: not since)."""

    # --- lifecycle ----------------------------------------------------------

    def recover_interrupted(self) -> list[str]:
        """At start-up, before the workers: deploys a crash cut off become ``interrupted``
        (reconcile brings their workloads back). Returns their workload ids."""
        with self.db.session() as s:
            return deployment_runs.interrupt_running(s)

    def start(self) -> None:
        """Start ``MOORAGE_DEPLOY_WORKERS`` worker threads."""
        for i in range(self.settings.deploy_workers):
            thread = threading.Thread(
                target=self._work_loop, name=f"deploy-worker-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=5)

    def wake(self) -> None:
        """Have the sleeping workers look at the queue now (call after the commit)."""
        with self._wake:
            self._wake.notify_all()

    # --- workers ------------------------------------------------------------

    def _work_loop(self) -> None:
        with self.db.priority.background():  # a webhook's answer goes first
            self._work_loop_body()

    def _work_loop_body(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.work_once()
            except Exception:
                log.exception("deploy worker error")
                worked = False
            if not worked:
                with self._wake:
                    self._wake.wait(IDLE_WAIT)

    def work_once(self) -> bool:
        """Run one queued deployment whose workload is free; False when none could run.
        Asks the database nothing while no deployment row changed since a look that found
        none queued (module docstring)."""
        generation = self.db.generations["queue"]  # read before the look: a later commit bumps it
        if generation == self._empty_at:
            return False
        with self.db.session() as s:
            queued = deployment_runs.queue_heads(s)
        if not queued:
            self._empty_at = generation
        seen: set[str] = set()
        for deployment_id, workload_id in queued:
            if workload_id in seen:
                continue  # two rows with the same timestamp: the next pass takes the other
            seen.add(workload_id)
            if not self.locks.acquire(workload_id, timeout=0):
                continue
            try:
                if self.claim(deployment_id):
                    self.run(deployment_id)
                    return True
            finally:
                self.locks.release(workload_id)
        return False

    def claim(self, deployment_id: str) -> bool:
        """Take a queued row for this worker; False when another took it first."""
        with self.db.session() as s:
            return deployment_runs.claim(s, deployment_id)

    def run(self, deployment_id: str) -> None:
        """Run a claimed deployment. The caller holds the workload's lock."""
        line = DeploymentLog(self.db, deployment_id)
        with self.db.session() as s:
            row = deployment_runs.claimed(s, deployment_id)
        workload_id, reason = row.workload_id, row.reason

        def deploy() -> dict[str, Any]:
            # Reading the workload can fail too (a volume that no longer passes its rules, an
            # uninstalled kind): the deployment must still end, never stay "running".
            with self.db.session() as s:
                view = self.views.view(s, workload_id)
                # Rows saved before the nesting rule existed are refused here too.
                volume_service.check_nesting(
                    s, self.settings, view.id, [(v.name, v.host_path) for v in view.volumes]
                )
                # and each volume of a stack still binds into a service of its file.
                volume_service.check_bound(
                    self.registry,
                    view.kind,
                    view.config,
                    view.env,
                    [(v.name, v.service) for v in view.volumes],
                )
                holds = deployment_runs.begin(s, deployment_id, view.id, reason, inputs_of(view))
            line(f"deploying {view.kind} workload {view.name} ({reason})")
            source = self.registry.source(view.kind)
            # What it runs now (env edits included) asks for no host power it does not hold.
            powers.check_deploy(source.host_powers(view, self.settings), holds)
            if self.checkpoint is not None:  # the data as it is, before anything changes
                self.checkpoint(view.id, deployment_id, line)
            ctx = self.views.context(view, deployment_id=deployment_id, log_line=line)
            ctx.pull = row.pull
            return source.deploy(ctx)

        self._attempt(deployment_id, workload_id, line, deploy, chain=True)

    def redeploy(self, workload_id: str, reason: str) -> str | None:
        """Run the last successful deployment's artifact again, health-checked like a deploy,
        and write a deployment row that carries it (SPEC section 6, step 7).

        The caller holds the workload's lock. A workload that never deployed, or whose
        desired state is not ``running``, is left as it is: nothing starts, no row is
        written, and None comes back. Otherwise the new row's id: ``succeeded`` with the
        artifact that now runs and the inputs it ran with, or ``failed`` with the reason
        (never raised: reconcile keeps bringing the artifact back). Starts no chain.
        """
        with self.db.session() as s:
            begun = deployment_runs.begin_redeploy(s, workload_id, reason)
        if begun is None:
            return None
        deployment_id, ran = begun
        line = DeploymentLog(self.db, deployment_id)
        line(f"running what deployment {ran} ran, again ({reason})")

        def again() -> dict[str, Any]:
            # Inside the attempt: a deployed volume that no longer passes its rules fails
            # this row like any other reason, instead of escaping the caller.
            with self.db.session() as s:
                view = self.views.deployed_view(s, workload_id)
            ctx = self.views.context(view, deployment_id=deployment_id, log_line=line)
            return self.registry.source(view.kind).redeploy(ctx)

        self._attempt(deployment_id, workload_id, line, again, chain=False)
        return deployment_id

    def _attempt(
        self,
        deployment_id: str,
        workload_id: str,
        line: DeploymentLog,
        action: Callable[[], dict[str, Any]],
        *,
        chain: bool,
    ) -> None:
        """Run ``action`` (it returns the artifact) and end the deployment row by its outcome."""
        try:
            artifact = action()
        except MoorageError as exc:
            line(f"deploy failed: {exc.message}")
            self._finish(deployment_id, workload_id, DeploymentStatus.FAILED, error=exc.message)
            return
        except Exception as exc:
            log.exception("deploy %s crashed", deployment_id)
            line(f"internal error: {type(exc).__name__}")
            self._finish(
                deployment_id,
                workload_id,
                DeploymentStatus.FAILED,
                error="internal error; the server log has the details",
            )
            return
        line("deploy succeeded")
        self._finish(
            deployment_id, workload_id, DeploymentStatus.SUCCEEDED, artifact=artifact, chain=chain
        )

    def _finish(
        self,
        deployment_id: str,
        workload_id: str,
        status: DeploymentStatus,
        *,
        error: str | None = None,
        artifact: dict[str, Any] | None = None,
        chain: bool = True,
    ) -> None:
        metrics.DEPLOYMENTS.labels(status).inc()
        succeeded = status == DeploymentStatus.SUCCEEDED
        observed = WorkloadStatus.RUNNING if succeeded else self.observe(workload_id)
        with self.db.session() as s:
            deployment_runs.finish(
                s,
                deployment_id,
                workload_id,
                status,
                observed,
                error=error,
                artifact=artifact,
                chain=chain,
            )
        if succeeded:
            self.wake()
