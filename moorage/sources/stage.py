"""Names and labels any source kind gives the Docker objects it makes for a workload: the
stage network, a deployment's container, and the labels that tie an object to its
workload, project and stage. Pure: no I/O here."""

from __future__ import annotations

from moorage.plugins.spec import WorkloadView
from moorage.runtime.engine import LABEL_PROJECT, LABEL_STAGE, LABEL_WORKLOAD


def network_name(project: str, stage: str) -> str:
    """One network per project and stage; workloads reach each other there by name.

    Joined with '_', which slugs never contain, so ("a-b", "c") and ("a", "b-c") differ.
    """
    return f"moorage_{project}_{stage}"


def container_name(workload: WorkloadView, deployment_id: str) -> str:
    suffix = deployment_id.rpartition("_")[2][-8:] or "0"
    return f"moorage_{workload.project}_{workload.stage}_{workload.name}_{suffix}"


def workload_labels(workload: WorkloadView, extra: dict[str, str]) -> dict[str, str]:
    return {
        **extra,
        LABEL_WORKLOAD: workload.id,
        LABEL_PROJECT: workload.project,
        LABEL_STAGE: workload.stage,
    }


def http_probe(port: int, path: str) -> list[str]:
    """The command that GETs ``path`` on ``port`` inside a container, for a restore drill's
    sandbox (which publishes no port): ``wget`` as busybox and GNU wget both take it; it
    exits non-zero on a status of 400 or more, printing why. No ``-T``: Debian's static
    busybox 1.35 crashes on it; the caller bounds the exec instead."""
    return ["wget", "-q", "-O", "-", f"http://127.0.0.1:{port}{path}"]
