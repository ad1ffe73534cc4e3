"""What a deploy runs, as a digest: the saved workload against its last successful deploy.

``Deployment.inputs`` keeps what a deploy ran (``deployer.views.inputs_of``); ``saved``
reads the same shape from the workload's rows. Their digests sit on the workload row
(``saved_digest``, kept by ``services.guard``; ``deployed_digest``, by the deployer when a
deploy succeeds), so ``pending_changes`` costs no query, even in a list. Only what reaches
the containers (and, SPEC 9, the domains) counts: a volume's ``shared`` flag changes no
mount.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.store.tables import Domain, EnvVar, Volume, Workload

MOUNT_KEYS = ("name", "scope", "source", "target", "read_only", "service")
"""What of a volume reaches a container. ``service`` (compose, SPEC 10) counts in a digest
only when set, so the digests of deployments from before it existed stay the same."""

DOMAIN_KEYS = ("host", "port", "service", "tls", "redirect_http")
"""What of a domain counts (SPEC 9: ``pending_changes`` covers domains). Only a workload
with domains carries the key, so the digests of those without stay what they were."""


def mount(v: Any) -> dict[str, Any]:
    """A volume (a row, a ``VolumeMount`` or a recorded dict) in ``Deployment.inputs``'
    shape: ``MOUNT_KEYS``, ``service`` only when set."""
    values = v if isinstance(v, dict) else {key: getattr(v, key, None) for key in MOUNT_KEYS}
    return {
        key: values.get(key)
        for key in MOUNT_KEYS
        if key != "service" or values.get(key) is not None
    }


def saved(session: Session, workload: Workload) -> dict[str, Any]:
    """The workload's config, env and volumes as saved, in ``Deployment.inputs``' shape."""
    env = session.execute(
        select(EnvVar.key, EnvVar.value).where(EnvVar.workload_id == workload.id)
    ).all()
    volumes = session.scalars(
        select(Volume).where(Volume.workload_id == workload.id).order_by(Volume.position)
    )
    routed = session.scalars(
        select(Domain).where(Domain.workload_id == workload.id).order_by(Domain.position)
    )
    saved: dict[str, Any] = {
        "config": dict(workload.config),
        "env": {key: value for key, value in env},
        "volumes": [mount(v) for v in volumes],
    }
    listed = [{key: getattr(d, key) for key in DOMAIN_KEYS} for d in routed]
    if listed:
        saved["domains"] = listed
    return saved


def digest(inputs: dict[str, Any]) -> str | None:
    """SHA-256 of ``inputs`` in a canonical form; None for empty ones (a deployment from
    before inputs were recorded says nothing)."""
    if not inputs:
        return None
    canonical = {
        "config": inputs.get("config", {}),
        "env": inputs.get("env", {}),
        "volumes": [mount(v) for v in inputs.get("volumes", [])],
    }
    if inputs.get("domains"):
        canonical["domains"] = [{key: d.get(key) for key in DOMAIN_KEYS} for d in inputs["domains"]]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def refresh(session: Session, workload: Workload) -> None:
    """Bring ``saved_digest`` up to date; an unchanged digest leaves the row unwritten."""
    current = digest(saved(session, workload))
    if workload.saved_digest != current:
        workload.saved_digest = current


def pending(saved_digest: str | None, deployed_digest: str | None) -> bool:
    """A saved change no successful deploy has run. Before the first deploy that recorded
    what it ran there is nothing to differ from (``status`` says ``never_deployed``)."""
    return deployed_digest is not None and saved_digest != deployed_digest
