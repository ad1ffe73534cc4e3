"""The deployer: background workers that run queued deployments, teardown, and reconcile.

Every path that touches a workload's containers takes ``WorkloadLocks`` for
that workload first. The database is the queue: a deployment row is claimed
by flipping ``queued`` to ``running`` in one UPDATE, so it runs once.

``converge`` brings a workload to its desired state (SPEC section 9): ``running``
brings the last good deployment back up, ``stopped`` stops whatever of it runs, and
nothing revives a stopped workload (a queued deploy of one fails; a person's deploy
asks it to run first).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from moorage import metrics
from moorage.errors import DeployFailed, EngineError, EngineUnavailable, MoorageError
from moorage.faults import FaultPoints
from moorage.names import new_id
from moorage.plugins.registry import Registry
from moorage.plugins.spec import DeployContext, VolumeMount, WorkloadView
from moorage.runtime.compose import ComposeRunner
from moorage.runtime.engine import LABEL_WORKLOAD, Engine
from moorage.security.roles import SYSTEM
from moorage.services import audit, deploys, inputs, powers, workloads
from moorage.services import env as env_service
from moorage.services import volumes as volume_service
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.states import DeploymentStatus, DesiredState, WorkloadStatus
from moorage.store.tables import Deployment, Workload, utcnow
from moorage.volumes.paths import containment_base, host_path

log = logging.getLogger("moorage.deployer")

MAX_LOG_CHARS = 256 * 1024
TEARDOWN_WAIT_SECONDS = 120.0


def inputs_of(view: WorkloadView) -> dict[str, Any]:
    """What a deploy of ``view`` runs, as ``Deployment.inputs`` keeps it."""
    return {
        "config": dict(view.config),
        "env": dict(view.env),
        "volumes": [{key: getattr(v, key) for key in inputs.MOUNT_KEYS} for v in view.volumes],
    }


@dataclass(frozen=True)
class Converged:
    """What ``Deployer.converge`` found and did."""

    status: WorkloadStatus
    changed: bool


class DeploymentLog:
    """Appends timestamped lines to a deployment's log as they happen."""

    def __init__(self, db: Database, deployment_id: str) -> None:
        self._db = db
        self._id = deployment_id
        self._size = 0

    def __call__(self, line: str) -> None:
        if self._size > MAX_LOG_CHARS:
            return
        text = f"{utcnow():%H:%M:%S} {line.rstrip()}\n"
        if self._size + len(text) > MAX_LOG_CHARS:
            text = "... log truncated\n"
        self._size += len(text)
        with self._db.session() as s:
            s.execute(
                update(Deployment)
                .where(Deployment.id == self._id)
                .values(log=Deployment.log + text)
            )


class Deployer:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        engine: Engine,
        compose: ComposeRunner,
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.engine = engine
        self.compose = compose
        self.locks = WorkloadLocks()
        self.fault = FaultPoints(settings)
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        """Mark deploys cut off by a crash as interrupted, then start workers and reconcile."""
        self.recover_interrupted()
        for i in range(self.settings.deploy_workers):
            self._spawn(f"deploy-worker-{i}", self._work_loop)
        self._spawn("reconciler", self._reconcile_loop)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=5)

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def prune_pins(self) -> None:
        """Drop volume pins whose containers are gone; an unreachable engine only logs."""
        try:
            pruned = self.engine.prune_pins()
        except MoorageError as exc:
            log.warning("could not prune volume pins: %s", exc.message)
            return
        if pruned:
            log.info("dropped the volume pins of %d containers that are gone", len(pruned))

    def recover_interrupted(self) -> list[str]:
        with self.db.session() as s:
            rows = list(
                s.scalars(select(Deployment).where(Deployment.status == DeploymentStatus.RUNNING))
            )
            for d in rows:
                d.status = DeploymentStatus.INTERRUPTED
                d.finished_at = utcnow()
                d.error = "Moorage stopped while this deploy ran; reconcile restores the workload"
                d.log = d.log + f"{utcnow():%H:%M:%S} interrupted by a restart\n"
            return [d.workload_id for d in rows]

    # --- reading a workload -------------------------------------------------

    def view(self, s: Session, workload_id: str) -> WorkloadView:
        """The workload as saved now (config, env, volumes), with its last artifact.

        What a deploy runs. Reconcile and a restore's redeploy use ``deployed_view``.
        """
        w = workloads.get(s, workload_id)
        return self._view(s, w, deploys.last_success(s, workload_id), deployed=False)

    def deployed_view(self, s: Session, workload_id: str) -> WorkloadView:
        """The workload as its last successful deployment ran it: that deployment's config,
        env and volumes (the saved ones where the row predates recording them), and its
        artifact (None: it never deployed). An edit no deploy has passed never runs."""
        w = workloads.get(s, workload_id)
        return self._view(s, w, deploys.last_success(s, workload_id), deployed=True)

    def _view(
        self, s: Session, w: Workload, done: Deployment | None, *, deployed: bool
    ) -> WorkloadView:
        project = workloads.project_slug(s, w)
        inputs = dict(done.inputs) if deployed and done is not None else {}
        if inputs:
            config, env = dict(inputs["config"]), dict(inputs["env"])
            volumes = [dict(v) for v in inputs["volumes"]]
        else:
            config = dict(w.config)
            env = {row.key: row.value for row in env_service.rows(s, w.id)}
            volumes = [v.as_dict() for v in volume_service.read(s, w.id)]
        mounts = tuple(self._mount(project, w.stage, v) for v in volumes)
        return WorkloadView(
            id=w.id,
            name=w.name,
            kind=w.kind,
            project=project,
            stage=w.stage,
            config=config,
            env=env,
            volumes=mounts,
            artifact=dict(done.artifact) if done is not None else None,
        )

    def _mount(self, project: str, stage: str, v: dict[str, Any]) -> VolumeMount:
        where = {
            "data_dir": self.settings.data_dir,
            "volume_roots": self.settings.volume_roots,
            "project": project,
            "stage": stage,
            "scope": v["scope"],
        }
        path = host_path(**where, source=v["source"])
        return VolumeMount(
            name=v["name"],
            scope=v["scope"],
            host_path=path,
            target=v["target"],
            read_only=v["read_only"],
            source=v["source"],
            base=containment_base(**where, path=path),
        )

    def context(
        self, view: WorkloadView, *, deployment_id: str = "", log_line: Any = None
    ) -> DeployContext:
        return DeployContext(
            engine=self.engine,
            compose=self.compose,
            settings=self.settings,
            workload=view,
            deployment_id=deployment_id,
            log=log_line or (lambda line: log.info("%s: %s", view.id, line)),
            fault=self.fault,
            labels=dict(self.settings.container_labels),
        )

    # --- workers ------------------------------------------------------------

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.work_once()
            except Exception:
                log.exception("deploy worker error")
                worked = False
            if not worked:
                with self._wake:
                    self._wake.wait(0.5)

    def work_once(self) -> bool:
        """Run one queued deployment whose workload is free; False when none could run."""
        with self.db.session() as s:
            # The oldest queued deployment of each workload: one workload's deploys run in
            # queue order, and a busy workload's backlog never hides another's.
            oldest = (
                select(Deployment.workload_id, func.min(Deployment.created_at).label("first"))
                .where(Deployment.status == DeploymentStatus.QUEUED)
                .group_by(Deployment.workload_id)
                .subquery()
            )
            queued = s.execute(
                select(Deployment.id, Deployment.workload_id)
                .join(
                    oldest,
                    (oldest.c.workload_id == Deployment.workload_id)
                    & (oldest.c.first == Deployment.created_at),
                )
                .where(Deployment.status == DeploymentStatus.QUEUED)
                .order_by(Deployment.created_at)
            ).all()
        seen: set[str] = set()
        for deployment_id, workload_id in queued:
            if workload_id in seen:
                continue  # two rows with the same timestamp: the next pass takes the other
            seen.add(workload_id)
            if not self.locks.acquire(workload_id, timeout=0):
                continue
            try:
                if self._claim(deployment_id):
                    self.run(deployment_id)
                    return True
            finally:
                self.locks.release(workload_id)
        return False

    def _claim(self, deployment_id: str) -> bool:
        with self.db.session() as s:
            result = s.execute(
                update(Deployment)
                .where(Deployment.id == deployment_id, Deployment.status == DeploymentStatus.QUEUED)
                .values(status=DeploymentStatus.RUNNING, started_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def run(self, deployment_id: str) -> None:
        """Run a claimed deployment. The caller holds the workload's lock."""
        line = DeploymentLog(self.db, deployment_id)
        with self.db.session() as s:
            deployment = s.get(Deployment, deployment_id)
            assert deployment is not None
            workload_id, reason, pull = deployment.workload_id, deployment.reason, deployment.pull

        def deploy() -> dict[str, Any]:
            # Reading the workload can fail too (a volume that no longer passes its rules, an
            # uninstalled kind): the deployment must still end, never stay "running".
            with self.db.session() as s:
                view = self.view(s, workload_id)
                # Rows saved before the nesting rule existed are refused here too.
                volume_service.check_nesting(
                    s, self.settings, view.id, [(v.name, v.host_path) for v in view.volumes]
                )
                workload = s.get(Workload, view.id)
                row = s.get(Deployment, deployment_id)
                assert workload is not None and row is not None
                if workload.desired_state != DesiredState.RUNNING:
                    raise DeployFailed(
                        f"workload {view.name} is stopped; this deploy ({reason}) does not "
                        "start it: start it, or deploy it again by hand"
                    )
                workload.status = WorkloadStatus.DEPLOYING
                row.inputs = inputs_of(view)
                holds = powers.held(workload)
            line(f"deploying {view.kind} workload {view.name} ({reason})")
            source = self.registry.source(view.kind)
            # What it runs now (env edits included) asks for no host power it does not hold.
            powers.check_deploy(source.host_powers(view, self.settings), holds)
            ctx = self.context(view, deployment_id=deployment_id, log_line=line)
            ctx.pull = pull
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
            workload = workloads.get(s, workload_id)
            done = deploys.last_success(s, workload_id)
            if done is None or workload.desired_state != DesiredState.RUNNING:
                return None
            row = Deployment(
                id=new_id("dp"),
                workload_id=workload_id,
                reason=reason,
                status=DeploymentStatus.RUNNING,
                artifact={},
                inputs=dict(done.inputs),
                started_at=utcnow(),
            )
            s.add(row)
            workload.status = WorkloadStatus.DEPLOYING
            deployment_id, ran = row.id, done.id
        line = DeploymentLog(self.db, deployment_id)
        line(f"running what deployment {ran} ran, again ({reason})")

        def again() -> dict[str, Any]:
            # Inside the attempt: a deployed volume that no longer passes its rules fails
            # this row like any other reason, instead of escaping the caller.
            with self.db.session() as s:
                view = self.deployed_view(s, workload_id)
            ctx = self.context(view, deployment_id=deployment_id, log_line=line)
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
            deployment = s.get(Deployment, deployment_id)
            workload = s.get(Workload, workload_id)
            if deployment is None or workload is None:
                return
            deployment.status = status
            deployment.finished_at = utcnow()
            deployment.error = error
            if artifact is not None:
                deployment.artifact = artifact
            if succeeded:
                workload.deployed_digest = inputs.digest(deployment.inputs)
            # A failed deploy that left the old version serving keeps the workload "running";
            # one refused because the workload is stopped leaves it "stopped".
            kept = {WorkloadStatus.RUNNING, WorkloadStatus.UNKNOWN}
            if workload.desired_state == DesiredState.STOPPED:
                kept.add(WorkloadStatus.STOPPED)
            workload.status = observed if observed in kept else WorkloadStatus.FAILED
            if succeeded and chain:
                chained = deploys.enqueue_chain(s, SYSTEM, workload_id)
                if chained:
                    deployment.log += (
                        f"{utcnow():%H:%M:%S} queued chain: "
                        f"{', '.join(d.workload_id for d in chained)}\n"
                    )
        if succeeded:
            self.wake()

    # --- observe, teardown, reconcile ----------------------------------------

    def observe(self, workload_id: str) -> WorkloadStatus:
        """The workload's status as the engine shows it; ``unknown`` when it cannot tell.
        A workload stopped on purpose that runs nothing is ``stopped``, whatever its
        containers' exit codes."""
        try:
            with self.db.session() as s:
                view = self.view(s, workload_id)
                desired = workloads.get(s, workload_id).desired_state
            status = self.registry.source(view.kind).status(self.context(view))
        except EngineUnavailable:
            return WorkloadStatus.UNKNOWN
        except MoorageError:
            return WorkloadStatus.UNKNOWN
        return _as_desired(status, desired)

    def teardown(self, workload_id: str) -> None:
        """Remove what the workload runs. Raises Conflict if it stays busy too long."""
        with self.locks.hold(workload_id, timeout=TEARDOWN_WAIT_SECONDS):
            with self.db.session() as s:
                view = self.view(s, workload_id)
                started = s.scalar(
                    select(Deployment.id)
                    .where(
                        Deployment.workload_id == workload_id,
                        Deployment.status != DeploymentStatus.QUEUED,
                    )
                    .limit(1)
                )
            if started is None:
                return  # never deployed: nothing runs, so no engine is needed to delete it
            self.engine.ping()
            self.registry.source(view.kind).teardown(self.context(view))

    def logs(self, workload_id: str, tail: int) -> str:
        with self.db.session() as s:
            view = self.view(s, workload_id)
        return self.registry.source(view.kind).logs(self.context(view), tail)

    def reconcile(self, workload_id: str, *, wait: float = 0) -> WorkloadStatus:
        """Fix drift for one workload; return its status. Skips a busy workload unless
        waiting. What it changed is audited as the system's doing."""
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
        any audit row.
        """
        with self.locks.hold(workload_id, timeout=0):  # re-entrant: the caller's own
            with self.db.session() as s:
                view = self.deployed_view(s, workload_id)
                current = workloads.get(s, workload_id)
                desired, recorded = current.desired_state, current.status
            if view.artifact is None:
                return Converged(recorded, False)
            source = self.registry.source(view.kind)
            ctx = self.context(view)
            try:
                stopped = (
                    self._stop_all(view) if restart or desired != DesiredState.RUNNING else False
                )
                started = desired == DesiredState.RUNNING and source.reconcile(ctx)
                status = _as_desired(source.status(ctx), desired)
                changed = stopped or started
            except EngineUnavailable:
                changed, status = False, WorkloadStatus.UNKNOWN
            except EngineError as exc:
                log.warning("reconcile of %s failed: %s", workload_id, exc.message)
                changed, status = False, WorkloadStatus.FAILED
            with self.db.session() as s:
                workload = s.get(Workload, workload_id)
                if workload is not None:
                    workload.status = status
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
        # Only workloads that ever deployed have something to observe or bring back.
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(Workload.id)
                    .where(
                        select(Deployment.id)
                        .where(
                            Deployment.workload_id == Workload.id,
                            Deployment.status == DeploymentStatus.SUCCEEDED,
                        )
                        .exists()
                    )
                    .order_by(Workload.created_at)
                )
            )
        for workload_id in ids:
            if self._stop.is_set():
                return
            try:
                self.reconcile(workload_id)
            except MoorageError as exc:
                log.warning("reconcile of %s: %s", workload_id, exc.message)
            except Exception:
                log.exception("reconcile of %s crashed", workload_id)

    def _reconcile_loop(self) -> None:
        while not self._stop.is_set():
            started = datetime.now()
            self.reconcile_all()
            elapsed = (datetime.now() - started).total_seconds()
            self._stop.wait(max(0.5, self.settings.reconcile_seconds - elapsed))


def _as_desired(status: str, desired: DesiredState) -> WorkloadStatus:
    """A stopped workload that runs nothing reads ``stopped``, never ``failed`` (an app
    stopped on purpose may exit non-zero on its way down). A word the kind's ``status``
    is not allowed to say reads ``unknown``."""
    if desired == DesiredState.STOPPED and status != WorkloadStatus.RUNNING:
        return WorkloadStatus.STOPPED
    try:
        return WorkloadStatus(status)
    except ValueError:
        log.warning("a source kind reported the status %r, which is not one", status)
        return WorkloadStatus.UNKNOWN
