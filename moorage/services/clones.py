"""Restore into a new workload (SPEC section 10, ``POST .../snapshots/{sid}/clone``): the
rows of the clone. The data goes in through ``snapshots/clone.py``; this module decides
what the new workload is and writes it, in the caller's guarded change.

The clone is the source as saved now: same kind, config, env (secrets included, copied
as stored, never shown) and volume list, under a new name (and stage). Its volumes are
**re-based**, never shared by accident:

- a ``stage`` volume's source becomes ``<clone name>/<volume name>`` (below the clone's
  stage directory);
- a ``project`` volume's source becomes ``<clone stage>/<clone name>/<volume name>``
  (below the project's ``_shared`` directory, which every stage sees);
- ``shared`` is cleared: the clone holds its own copy, even of a volume the source
  shares with others (sharing again is an explicit ``PUT .../volumes``);
- an ``absolute`` volume names a host directory Moorage does not place: there is no
  second place to put it, so a clone of a workload with one is refused (409
  ``volume_in_use``) rather than made to mount the source's directory.

A fixed host port is the source's: the clone publishes the same container ports on
loopback ports the engine picks (``FixedPorts.without_host_ports``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput
from moorage.names import check_slug
from moorage.plugins.registry import Registry
from moorage.plugins.spec import FixedPorts
from moorage.security.roles import Actor
from moorage.services import audit, powers, projects, workloads
from moorage.services import snapshots as snapshot_service
from moorage.services import volumes as volume_service
from moorage.services.audit import AuditAction
from moorage.services.env import rows as env_rows
from moorage.services.volumes import VolumeSpec
from moorage.settings import Settings
from moorage.store.states import SnapshotStatus
from moorage.store.tables import EnvVar, Snapshot, Workload


@dataclass(frozen=True)
class ClonedVolume:
    """A volume of the clone: where its data goes, and the archive index that holds it
    (None: the snapshot does not hold this volume, so it starts empty)."""

    spec: VolumeSpec
    path: Path
    index: int | None


def rebased(spec: VolumeSpec, name: str, stage: str) -> VolumeSpec:
    """``spec`` as the clone ``name`` in ``stage`` holds it (see the module docstring)."""
    if spec.scope == "stage":
        source = f"{name}/{spec.name}"
    elif spec.scope == "project":
        source = f"{stage}/{name}/{spec.name}"
    else:
        raise Conflict(
            f"volume {spec.name!r} is an absolute host directory ({spec.source}); a clone "
            "cannot have a copy of its own there, and would mount the source's data. "
            "Clone a workload whose volumes are stage or project scoped",
            code="volume_in_use",
        )
    return replace(spec, source=source, shared=False)


def ready_snapshot(session: Session, workload_id: str, snapshot_id: str) -> Snapshot:
    """The snapshot, which must be ``ready`` (409 ``not_ready``); 404 otherwise."""
    snap = snapshot_service.get(session, workload_id, snapshot_id)
    if snap.status != SnapshotStatus.READY:
        raise Conflict(f"snapshot {snapshot_id} is {snap.status}, not ready", code="not_ready")
    return snap


NO_WORKLOAD = ""  # the clone has no id yet: every workload's volumes are another's


def plan(
    session: Session,
    settings: Settings,
    source: Workload,
    snap: Snapshot,
    *,
    name: str,
    stage: str,
) -> list[ClonedVolume]:
    """The clone's volumes with their host paths; refuses (409 ``volume_mismatch``) a
    snapshot volume the workload no longer has, (409 ``volume_in_use``) a target
    that already holds something (data an earlier workload left behind) or that another
    workload mounts, and (409 ``volume_nested``) one inside another workload's volume or
    holding one (``services.volumes.check_nesting``), all before anything is written."""
    project = workloads.project_slug(session, source)
    in_archive = {v["name"]: int(v["index"]) for v in (snap.manifest or {}).get("volumes", [])}
    specs = volume_service.read(session, source.id)
    lost = sorted(set(in_archive) - {spec.name for spec in specs})
    if lost:
        raise Conflict(
            f"the snapshot holds volume {', '.join(lost)}, which the workload no longer has "
            "(renamed or removed since): a clone would leave that data behind; set the "
            "volume back, or restore the snapshot's archive by hand",
            code="volume_mismatch",
            details={"volumes": lost},
        )
    out = []
    for spec in specs:
        mine = rebased(spec, name, stage)
        path = volume_service.path_of(settings, project, stage, mine.scope, mine.source)
        if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
            raise Conflict(
                f"volume {spec.name!r} of the clone would live at {path}, which already "
                "holds data (left by an earlier workload?); remove it or pick another name",
                code="volume_in_use",
            )
        out.append(ClonedVolume(mine, path, in_archive.get(spec.name)))
    # Before anything is written: a clone's directory inside (or holding) another
    # workload's volume would be staged where that workload's container can swap a
    # directory on the path for a link, and the unpacking would follow it out of the
    # data dir (the attacker pass wrote a snapshot into a host directory so).
    paths = [(v.spec.name, v.path) for v in out]
    volume_service.check_nesting(session, settings, NO_WORKLOAD, paths)
    volume_service.check_sharing(session, settings, NO_WORKLOAD, [(v.spec, v.path) for v in out])
    return out


def check(
    session: Session,
    registry: Registry,
    source: Workload,
    *,
    name: str,
    stage: str | None,
) -> str:
    """Refuse a bad name or stage before anything is read or written (422
    ``invalid_slug``/``unknown_stage``, 409 ``duplicate``, ``volumes_unsupported``);
    answer the clone's stage."""
    check_slug("workload name", name)
    stage = stage or source.stage
    owner = projects.get(session, workloads.project_slug(session, source))
    if stage not in owner.stages:
        raise InvalidInput(
            f"stage {stage!r} is not one of project {owner.slug!r}'s stages "
            f"({', '.join(owner.stages)})",
            code="unknown_stage",
        )
    taken = session.scalar(
        select(Workload.id).where(
            Workload.project_id == source.project_id,
            Workload.stage == stage,
            Workload.name == name,
        )
    )
    if taken is not None:
        raise Conflict(f"a workload named {name!r} already exists in that stage", code="duplicate")
    if not registry.source(source.kind).supports_volumes:
        raise InvalidInput(
            f"a {source.kind} workload has no Moorage volumes to clone",
            code="volumes_unsupported",
        )
    return stage


def _clone_config(registry: Registry, source: Workload) -> dict[str, Any]:
    """The source's config as the clone runs it: without fixed host ports (the source
    holds them)."""
    kind = registry.source(source.kind)
    config: dict[str, Any] = dict(source.config)
    return kind.without_host_ports(config) if isinstance(kind, FixedPorts) else config


def check_powers(
    session: Session, actor: Actor, registry: Registry, settings: Settings, source: Workload
) -> None:
    """Refuse an operator's clone of a workload whose config asks Docker for host powers
    before anything is read or unpacked (403 ``needs_admin``): the clone would be a new
    workload holding none, and ``create`` refuses it then anyway."""
    if actor.can("admin"):
        return
    env = {row.key: row.value for row in env_rows(session, source.id)}
    view = powers.view_of(session, source, config=_clone_config(registry, source), env=env)
    asked = registry.source(view.kind).host_powers(view, settings)
    if asked:
        raise powers.needs_admin(asked, "clone a workload")


def create(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    source: Workload,
    snap: Snapshot,
    *,
    name: str,
    stage: str,
    volumes: list[ClonedVolume],
) -> Workload:
    """Write the clone inside the caller's guarded change (one ``snapshot.clone`` audit
    row): the workload (``workloads.create``, which refuses a taken name with 409
    ``duplicate``), its env copied as stored, the re-based volumes
    (``volumes.replace``: nesting and sharing rules), and the host-power review with
    the env (403 ``needs_admin`` for an operator when the source needs an admin)."""
    config = _clone_config(registry, source)
    clone = workloads.create(
        session,
        actor,
        registry,
        settings,
        name=name,
        kind=source.kind,
        project=workloads.project_slug(session, source),
        stage=stage,
        config=config,  # as stored: a secret of the source's config is in clear here
    )
    env = {row.key: (row.value, row.secret) for row in env_rows(session, source.id)}
    for key, (value, secret) in env.items():
        session.add(EnvVar(workload_id=clone.id, key=key, value=value, secret=secret))
    session.flush()
    powers.review(
        session,
        actor,
        registry,
        settings,
        clone,
        powers.view_of(session, clone, env={k: v for k, (v, _) in env.items()}),
        what="clone a workload",
    )
    volume_service.replace(session, actor, settings, registry, clone.id, [v.spec for v in volumes])
    clone.keep_last = source.keep_last
    audit.record(
        session,
        actor,
        AuditAction.SNAPSHOT_CLONE,
        "workload",
        clone.id,
        {"source": source.id, "snapshot": snap.id, "env": sorted(env)},
    )
    return clone
