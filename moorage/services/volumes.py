"""A workload's volume list, checked against the containment rules of its scope.

No volume's host directory may lie inside another's (any workload, any scope): a
container that mounts the outer one could swap a component of the inner one's path
for a symlink, and the next deploy would bind whatever that link points at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, Forbidden, InvalidInput, MoorageError
from moorage.names import is_slug
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.workloads import get as get_workload
from moorage.services.workloads import project_slug
from moorage.settings import Settings
from moorage.store.tables import Project, Volume, Workload
from moorage.volumes.paths import host_path, normalize_target

MAX_VOLUMES = 64


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    scope: str
    source: str
    target: str
    read_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "source": self.source,
            "target": self.target,
            "read_only": self.read_only,
        }


def read(session: Session, workload_id: str) -> list[VolumeSpec]:
    get_workload(session, workload_id)
    rows = session.scalars(
        select(Volume).where(Volume.workload_id == workload_id).order_by(Volume.position)
    )
    return [VolumeSpec(r.name, r.scope, r.source, r.target, r.read_only) for r in rows]


def replace(
    session: Session,
    actor: Actor,
    settings: Settings,
    registry: Registry,
    workload_id: str,
    wanted: list[VolumeSpec],
) -> list[VolumeSpec]:
    """Replace the whole list; adding, changing or removing an ``absolute`` volume is admin-only."""
    workload = get_workload(session, workload_id)
    if wanted and not registry.source(workload.kind).supports_volumes:
        raise InvalidInput(
            f"a {workload.kind} workload does not mount Moorage volumes; declare them in its "
            "own config",
            code="volumes_unsupported",
        )
    if len(wanted) > MAX_VOLUMES:
        raise InvalidInput(f"at most {MAX_VOLUMES} volumes per workload", code="invalid_volume")
    project = project_slug(session, workload)
    names: set[str] = set()
    targets: set[str] = set()
    clean: list[VolumeSpec] = []
    for spec in wanted:
        if not is_slug(spec.name):
            raise InvalidInput(
                f"volume name {spec.name!r} must be 1-63 lower-case letters, digits or '-'",
                code="invalid_volume",
            )
        if spec.name in names:
            raise InvalidInput(f"volume name {spec.name!r} is used twice", code="invalid_volume")
        target = normalize_target(spec.target)
        if target in targets:
            raise InvalidInput(f"target {target!r} is mounted twice", code="invalid_volume")
        host_path(
            data_dir=settings.data_dir,
            volume_roots=settings.volume_roots,
            project=project,
            stage=workload.stage,
            scope=spec.scope,
            source=spec.source,
        )
        names.add(spec.name)
        targets.add(target)
        clean.append(VolumeSpec(spec.name, spec.scope, spec.source, target, spec.read_only))
    check_nesting(
        session,
        settings,
        workload_id,
        [
            (
                spec.name,
                host_path(
                    data_dir=settings.data_dir,
                    volume_roots=settings.volume_roots,
                    project=project,
                    stage=workload.stage,
                    scope=spec.scope,
                    source=spec.source,
                ),
            )
            for spec in clean
        ],
    )
    before = read(session, workload_id)
    touched_absolute = {v for v in before if v.scope == "absolute"} ^ {
        v for v in clean if v.scope == "absolute"
    }
    if touched_absolute and not actor.can("admin"):
        raise Forbidden(
            "only an admin may add, change or remove an 'absolute' volume", code="forbidden"
        )
    for row in session.scalars(select(Volume).where(Volume.workload_id == workload_id)):
        session.delete(row)
    session.flush()
    for position, spec in enumerate(clean):
        session.add(Volume(workload_id=workload_id, position=position, **spec.as_dict()))
    session.flush()
    audit.record(
        session,
        actor,
        "workload.volumes.replace",
        "workload",
        workload_id,
        {"volumes": [v.as_dict() for v in clean]},
    )
    return clean


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_nesting(
    session: Session, settings: Settings, workload_id: str, mine: list[tuple[str, Path]]
) -> None:
    """Refuse a volume whose host directory lies inside another volume's, or holds one.

    ``mine`` is the workload's (volume name, host path) list. Paths are compared after
    resolving symlinks, against each other and against every other workload's volumes.
    Raises ``Conflict`` 409 ``volume_nested`` naming both volumes (and the other
    workload); equal paths are not nesting (sharing has its own rule).
    """
    real = [(name, _real(path)) for name, path in mine]
    for i, (name, path) in enumerate(real):
        for other, other_path in real[i + 1 :]:
            if path != other_path and (
                path.is_relative_to(other_path) or other_path.is_relative_to(path)
            ):
                raise Conflict(
                    f"volume {name!r} ({path}) and volume {other!r} ({other_path}) are nested; "
                    "a container could swap a directory on the inner one's path for a link",
                    code="volume_nested",
                )
    rows = session.execute(
        select(
            Volume.name,
            Volume.workload_id,
            Volume.scope,
            Volume.source,
            Workload.stage,
            Workload.name,
            Project.slug,
        )
        .join(Workload, Workload.id == Volume.workload_id)
        .join(Project, Project.id == Workload.project_id)
        .where(Volume.workload_id != workload_id)
    ).all()
    for volume, other_id, scope, source, stage, other_name, project in rows:
        try:
            theirs = _real(
                host_path(
                    data_dir=settings.data_dir,
                    volume_roots=settings.volume_roots,
                    project=project,
                    stage=stage,
                    scope=scope,
                    source=source,
                )
            )
        except MoorageError:
            continue
        for name, path in real:
            if path != theirs and (path.is_relative_to(theirs) or theirs.is_relative_to(path)):
                raise Conflict(
                    f"volume {name!r} ({path}) is nested with volume {volume!r} of workload "
                    f"{other_name!r} ({other_id}) in {project}/{stage} ({theirs}); a container "
                    "of one could swap a directory on the other's path for a link",
                    code="volume_nested",
                    details=[{"field": name, "workload": other_id, "volume": volume}],
                )
