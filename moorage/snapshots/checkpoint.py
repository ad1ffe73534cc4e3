"""Deploy checkpoints and the rollback with data (SPEC section 10): the background side.

``Checkpointer`` is what a deploy calls (``DeployQueue.checkpoint``) once its row is
running and before the kind changes anything: for a workload with ``checkpoint:
before-deploy`` it captures a snapshot of every volume (mode ``stop``) under the lock
the deploy already holds, linked as the deployment's ``checkpoint_snapshot_id``. A
checkpoint that fails fails the deploy, which then changed nothing.

``Rollback.start`` finishes a rollback with data that the route accepted (the saved
config already runs the target's artifact, the workload is held ``stopped`` and a
restore of the checkpoint is accepted): converge stops every container, the restore
runs (the restore protocol of SPEC section 6: a stopped workload stays stopped with its
data restored), then the workload runs again and the deploy of the target's artifact
is queued. A crash in between leaves the workload stopped, its data restored or not by
the restore's own recovery; starting or deploying it finishes the job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from moorage.deployer.facade import Deployer
from moorage.errors import DeployFailed
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import checkpoints, restore_runs
from moorage.snapshots.capture import Snapshotter
from moorage.snapshots.restore.run import RestoreEngine
from moorage.store.db import Database
from moorage.store.states import RestoreStatus, SnapshotStatus

log = logging.getLogger("moorage.snapshots")


class Checkpointer:
    """``(workload id, deployment id, log line) -> None``: the checkpoint of a deploy."""

    def __init__(self, db: Database, registry: Registry, snapshotter: Snapshotter) -> None:
        self.db = db
        self.registry = registry
        self.snapshotter = snapshotter

    def __call__(self, workload_id: str, deployment_id: str, line: Callable[[str], None]) -> None:
        with self.db.session() as s:
            snapshot_id = checkpoints.request(s, self.registry, workload_id, deployment_id)
        if snapshot_id is None:
            return
        line(f"checkpoint: capturing snapshot {snapshot_id} of every volume (mode stop)")
        self.snapshotter.capture(snapshot_id)  # the deploy holds the (re-entrant) lock
        with self.db.session() as s:
            status, error = checkpoints.outcome(s, snapshot_id)
        if status != SnapshotStatus.READY:
            raise DeployFailed(f"the checkpoint snapshot {snapshot_id} failed: {error}")
        line(f"checkpoint: snapshot {snapshot_id} is ready")


class Rollback:
    """Runs accepted rollbacks with data, each on a thread of its own."""

    def __init__(self, db: Database, deployer: Deployer, restorer: RestoreEngine) -> None:
        self.db = db
        self.deployer = deployer
        self.restorer = restorer

    def start(
        self, actor: Actor, workload_id: str, plan: checkpoints.Plan, restore_id: str
    ) -> None:
        threading.Thread(
            target=self.run,
            args=(actor, workload_id, plan, restore_id),
            name=f"rollback-{workload_id}",
            daemon=True,
        ).start()

    def run(self, actor: Actor, workload_id: str, plan: checkpoints.Plan, restore_id: str) -> None:
        locks = self.deployer.locks
        with locks.hold(workload_id, timeout=600):
            self.deployer.converge(workload_id)  # desired stopped: every container stops
        self.restorer.run(restore_id)
        with self.db.session() as s:
            restore = restore_runs.load(s, restore_id)
            restored = restore.status == RestoreStatus.SUCCEEDED
            if not restored:
                log.warning(
                    "rollback of %s: the restore %s ended %s",
                    workload_id,
                    restore_id,
                    restore.status,
                )
            checkpoints.queue_after_restore(s, actor, workload_id, plan, restored)
        if restored:
            self.deployer.wake()
        else:
            with locks.hold(workload_id, timeout=600):
                self.deployer.converge(workload_id)
