"""Reading a workload for the background work: its ``WorkloadView`` and ``DeployContext``.

``view`` is the workload as saved now (what a deploy runs); ``deployed_view`` is the
workload as its last successful deployment ran it (what reconcile and a restore's
redeploy run), so an edit no deploy has passed never runs by itself. Volume host
paths are derived again from the current settings (``volumes/paths.py``). Reads
only; it never writes a row or touches the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from moorage.errors import MoorageError
from moorage.plugins.spec import DeployContext, VolumeMount, WorkloadView
from moorage.runtime.compose import ComposeRunner
from moorage.runtime.engine import Engine
from moorage.services import deploys, inputs, workloads
from moorage.services import domains as domain_service
from moorage.services import env as env_service
from moorage.services import volumes as volume_service
from moorage.settings import Settings
from moorage.volumes.paths import containment_base, host_path

log = logging.getLogger("moorage.deployer")


def inputs_of(view: WorkloadView) -> dict[str, Any]:
    """What a deploy of ``view`` runs, as ``Deployment.inputs`` keeps it."""
    return {
        "config": dict(view.config),
        "env": dict(view.env),
        "volumes": [inputs.mount(v) for v in view.volumes],
        **({"domains": [dict(d) for d in view.domains]} if view.domains else {}),
    }


class WorkloadViews:
    """Builds workload views and the deploy context a source kind gets."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        compose: ComposeRunner,
        fault: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.compose = compose
        self.fault = fault
        self.route_to: Callable[[str, str], None] = lambda _workload, _container: None
        """The proxy's switch (``proxy.router.Router.switch``), when there is one."""
        self.route_hold: Callable[[str, bool], None] = lambda _workload, _hold: None
        """The proxy's hold (``proxy.router.Router.hold``), when there is one."""

    def view(self, s: Session, workload_id: str, *, removing: bool = False) -> WorkloadView:
        """The workload as saved now (config, env, volumes), with its last artifact.
        Raises NotFound for an unknown workload.

        What a deploy runs. Reconcile and a restore's redeploy use ``deployed_view``.
        ``removing``: for taking down what runs, which needs no volume: a volume whose
        path no longer passes its checks (a link to outside, roots changed) is left out
        instead of failing (422), so stop and delete work from labels and stored state.
        """
        return self._read(s, workload_id, deployed=False, removing=removing)

    def deployed_view(
        self, s: Session, workload_id: str, *, removing: bool = False
    ) -> WorkloadView:
        """The workload as its last successful deployment ran it: that deployment's config,
        env and volumes (the saved ones where the row predates recording them), and its
        artifact (None: it never deployed). An edit no deploy has passed never runs.
        ``removing`` as for ``view``."""
        return self._read(s, workload_id, deployed=True, removing=removing)

    def _read(
        self, s: Session, workload_id: str, *, deployed: bool, removing: bool = False
    ) -> WorkloadView:
        w = workloads.get(s, workload_id)
        done = deploys.last_success(s, workload_id)
        project = workloads.project_slug(s, w)
        recorded = dict(done.inputs) if deployed and done is not None else {}
        if recorded:
            config, env = dict(recorded["config"]), dict(recorded["env"])
            volumes = [dict(v) for v in recorded["volumes"]]
            routed = [dict(d) for d in recorded.get("domains", [])]
        else:
            config = dict(w.config)
            env = {row.key: row.value for row in env_service.rows(s, w.id)}
            volumes = [v.as_dict() for v in volume_service.read(s, w.id)]
            routed = [
                {key: getattr(d, key) for key in inputs.DOMAIN_KEYS}
                for d in domain_service.read(s, w.id)
            ]
        mounts = []
        for v in volumes:
            try:
                mounts.append(self._mount(project, w.stage, v))
            except MoorageError as exc:
                if not removing:
                    raise
                log.warning("%s: volume %s left out: %s", w.id, v.get("name"), exc.message)
        return WorkloadView(
            id=w.id,
            name=w.name,
            kind=w.kind,
            project=project,
            stage=w.stage,
            config=config,
            env=env,
            volumes=tuple(mounts),
            artifact=dict(done.artifact) if done is not None else None,
            domains=tuple(routed),
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
            service=v.get("service"),
        )

    def context(
        self,
        view: WorkloadView,
        *,
        deployment_id: str = "",
        log_line: Callable[[str], None] | None = None,
    ) -> DeployContext:
        """The tools a source kind gets to act on ``view``: engine, compose runner,
        settings, the log (the server log when none is given), the fault points and the
        labels from ``MOORAGE_CONTAINER_LABELS``."""
        return DeployContext(
            engine=self.engine,
            compose=self.compose,
            settings=self.settings,
            workload=view,
            deployment_id=deployment_id,
            log=log_line or (lambda line: log.info("%s: %s", view.id, line)),
            fault=self.fault,
            labels=dict(self.settings.container_labels),
            switch=lambda container_id: self.route_to(view.id, container_id),
            hold_routes=lambda hold: self.route_hold(view.id, hold),
        )
