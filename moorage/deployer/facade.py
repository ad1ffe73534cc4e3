"""``Deployer``: the deployer's face to the API, one object for what routes ask of the
background work (the workload lock, waking the workers, converge, teardown, logs).

It holds no state of its own; ``moorage/server.py`` builds the parts (``DeployQueue``,
``Reconciler``, ``WorkloadViews``) and this binds them to one lock table.
"""

from __future__ import annotations

from moorage.deployer import teardown
from moorage.deployer.queue import DeployQueue
from moorage.deployer.reconcile import Converged, Reconciler
from moorage.deployer.views import WorkloadViews
from moorage.plugins.registry import Registry
from moorage.runtime.engine import Engine
from moorage.services.locks import WorkloadLocks
from moorage.store.db import Database
from moorage.store.states import WorkloadStatus


class Deployer:
    """What the routes use: ``locks``, ``wake``, ``converge``, ``reconcile``,
    ``teardown`` and ``logs``; each delegates to the part that does it."""

    def __init__(
        self,
        db: Database,
        registry: Registry,
        engine: Engine,
        locks: WorkloadLocks,
        views: WorkloadViews,
        queue: DeployQueue,
        reconciler: Reconciler,
    ) -> None:
        self.db = db
        self.registry = registry
        self.engine = engine
        self.locks = locks
        self.views = views
        self.queue = queue
        self.reconciler = reconciler

    def wake(self) -> None:
        """Have the workers look at the queue now (``DeployQueue.wake``)."""
        self.queue.wake()

    def converge(self, workload_id: str, *, restart: bool = False) -> Converged:
        """``Reconciler.converge``: the caller holds the workload's lock."""
        return self.reconciler.converge(workload_id, restart=restart)

    def reconcile(self, workload_id: str, *, wait: float = 0) -> WorkloadStatus:
        """``Reconciler.reconcile``: takes the lock, converges, audits a change."""
        return self.reconciler.reconcile(workload_id, wait=wait)

    def teardown(self, workload_id: str, *, purge_volumes: bool = False) -> None:
        """``deployer.teardown.teardown``: remove what the workload runs, under its lock;
        its Docker volumes only with ``purge_volumes`` (else 409 ``has_volumes``)."""
        teardown.teardown(
            self.db,
            self.registry,
            self.engine,
            self.views,
            self.locks,
            workload_id,
            purge_volumes=purge_volumes,
        )

    def logs(self, workload_id: str, tail: int) -> str:
        """The last ``tail`` lines the workload's containers wrote (``SourceKind.logs``)."""
        with self.db.session() as s:
            view = self.views.view(s, workload_id)
        return self.registry.source(view.kind).logs(self.views.context(view), tail)
