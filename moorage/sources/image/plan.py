"""Pure functions that turn an image workload into names and container specs. No I/O here."""

from __future__ import annotations

import dataclasses
from typing import Any

from moorage.plugins.spec import WorkloadView
from moorage.runtime.engine import (
    LABEL_CANDIDATE,
    LABEL_DEPLOYMENT,
    BindMount,
    ContainerSpec,
    PortBinding,
)
from moorage.sources.image.config import ImageConfig
from moorage.sources.stage import container_name, network_name, workload_labels


def container_spec(
    workload: WorkloadView,
    config: ImageConfig,
    *,
    deployment_id: str,
    image: str,
    publish_addr: str,
    extra_labels: dict[str, str],
) -> ContainerSpec:
    """The container that runs ``image`` for this deployment of an image workload."""
    return ContainerSpec(
        name=container_name(workload, deployment_id),
        image=image,
        labels={**workload_labels(workload, extra_labels), LABEL_DEPLOYMENT: deployment_id},
        network=network_name(workload.project, workload.stage),
        aliases=(workload.name,),
        command=tuple(config.command) if config.command is not None else None,
        env=dict(workload.env),
        ports=tuple(
            PortBinding(p.container, p.host, p.protocol, publish_addr) for p in config.ports
        ),
        mounts=tuple(
            BindMount(
                str(v.host_path),
                v.target,
                v.read_only,
                base=str(v.base) if v.base is not None else None,
            )
            for v in workload.volumes
        ),
        init=config.init,
        stop_timeout=config.stop_timeout,
    )


def fixed_host_ports(spec: ContainerSpec) -> set[tuple[int, str]]:
    return {(p.host, p.protocol) for p in spec.ports if p.host is not None}


def candidate_spec(spec: ContainerSpec) -> ContainerSpec:
    """``spec`` as a candidate to health-check before it takes the workload's host ports:
    each port published on a loopback port the engine picks, no network alias (the
    workload's name keeps answering from the old container), never revived by a
    restart policy (a crash is a failed check), and labelled as a candidate."""
    return dataclasses.replace(
        spec,
        name=f"{spec.name}_candidate",
        labels={**spec.labels, LABEL_CANDIDATE: "true"},
        aliases=(),
        ports=tuple(dataclasses.replace(p, host=None) for p in spec.ports),
        restart_policy="no",
    )


def image_to_run(config: ImageConfig, artifact: dict[str, Any] | None = None) -> str:
    return config.image if artifact is None else str(artifact.get("image_id") or config.image)
