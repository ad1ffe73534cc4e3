"""A workload's volume list, checked against the containment rules of its scope.

No volume's host directory may lie inside another's (any workload, any scope): a
container that mounts the outer one could swap a component of the inner one's path
for a symlink, and the next deploy would bind whatever that link points at. Two
workloads mount the same stage or project directory only when both volumes say
``shared`` (SPEC section 9): sharing is never silent. ``mounted_by_others`` is the
one walk over the other workloads' volumes that these rules and a restore's
pre-flight make.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, Forbidden, InvalidInput, MoorageError
from moorage.names import is_slug
from moorage.plugins.registry import Registry
from moorage.plugins.spec import Stack, UncoveredVolume
from moorage.security.roles import Actor
from moorage.services import audit, powers
from moorage.services import env as env_service
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.services.workloads import project_slug
from moorage.settings import Settings
from moorage.store.tables import Project, Volume, Workload
from moorage.volumes.paths import host_path, normalize_target, real_path

MAX_VOLUMES = 64
SHARABLE_SCOPES = ("stage", "project")
"""Scopes whose directories Moorage makes: sharing one between workloads needs ``shared``."""


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    scope: str
    source: str
    target: str
    read_only: bool = False
    shared: bool = False
    service: str | None = None
    """The Compose service the bind goes to: required for a stack kind, else None."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "source": self.source,
            "target": self.target,
            "read_only": self.read_only,
            "shared": self.shared,
            "service": self.service,
        }


@dataclass(frozen=True)
class Mounted:
    """A volume of another workload, with its host directory resolved (symlinks followed)."""

    workload_id: str
    workload: str
    project: str
    stage: str
    volume: str
    scope: str
    shared: bool
    path: Path
    lexical: Path
    """The host path as derived, symlinks not followed (``path`` follows them)."""

    def named(self) -> str:
        return f"workload {self.workload!r} ({self.workload_id}) in {self.project}/{self.stage}"

    def detail(self, field: str) -> dict[str, str]:
        """An error detail naming this volume and its workload, for a clash with ``field``."""
        return {
            "field": field,
            "workload": self.workload_id,
            "workload_name": self.workload,
            "volume": self.volume,
        }


def _absolute(specs: list[VolumeSpec]) -> set[tuple[object, ...]]:
    """The ``absolute`` volumes of a list, compared whole (target as the list stores it)."""
    found: set[tuple[object, ...]] = set()
    for v in specs:
        if v.scope == "absolute":
            try:
                target = normalize_target(v.target)
            except InvalidInput:
                target = v.target
            found.add((v.name, v.source, target, v.read_only, v.shared, v.service))
    return found


def _check_absolute_kept(before: list[VolumeSpec], wanted: list[VolumeSpec]) -> None:
    """Raise ``Forbidden`` unless ``wanted`` keeps every ``absolute`` volume of ``before``
    exactly and adds none: an ``absolute`` volume mounts a host path, an admin's power
    (SPEC section 1, volume scopes)."""
    if _absolute(before) != _absolute(wanted):
        raise Forbidden(
            "only an admin may add, change or remove an 'absolute' volume (a host path); "
            "an operator's volumes are 'stage' or 'project' ones",
            code="forbidden",
        )


def read(session: Session, workload_id: str) -> list[VolumeSpec]:
    get_workload(session, workload_id)
    rows = session.scalars(
        select(Volume).where(Volume.workload_id == workload_id).order_by(Volume.position)
    )
    return [
        VolumeSpec(r.name, r.scope, r.source, r.target, r.read_only, r.shared, r.service)
        for r in rows
    ]


def uncovered(session: Session, registry: Registry, workload_id: str) -> list[UncoveredVolume]:
    """Volumes the workload's own config declares (Compose named volumes): the engine
    keeps them and no snapshot covers them (SPEC section 10); empty for other kinds."""
    workload = get_workload(session, workload_id)
    source = registry.source(workload.kind)
    if not isinstance(source, Stack):
        return []
    try:
        return source.uncovered_volumes(dict(workload.config), _env(session, workload_id))
    except MoorageError:
        return []


def _env(session: Session, workload_id: str) -> dict[str, str]:
    return {row.key: row.value for row in env_service.rows(session, workload_id)}


def _services(session: Session, registry: Registry, workload: Workload) -> list[str] | None:
    """The services of a stack kind's workload, as its config runs with its env; None for
    a one-container kind."""
    source = registry.source(workload.kind)
    if not isinstance(source, Stack):
        return None
    return source.service_names(dict(workload.config), _env(session, workload.id))


def _check_service(
    name: str, service: str | None, services: list[str] | None, remedy: str = ""
) -> None:
    """A stack's volume names one of its services; another kind's names none (422).
    ``remedy``: what to do, added when the change that meets the volume is not its own."""
    if services is None:
        if service is not None:
            raise InvalidInput(
                f"volume {name!r}: only a compose workload's volumes name a service",
                code="invalid_volume",
                details=[{"field": "service", "volume": name}],
            )
        return
    if service is None:
        raise InvalidInput(
            f"volume {name!r}: name the Compose service it binds into "
            f"(one of: {', '.join(services) or 'none'}){remedy}",
            code="unknown_service",
            details=[{"field": "service", "volume": name}],
        )
    if service not in services:
        raise InvalidInput(
            f"volume {name!r}: the Compose file has no service {service!r} "
            f"(it has: {', '.join(services) or 'none'}){remedy}",
            code="unknown_service",
            details=[{"field": "service", "volume": name, "service": service}],
        )


REBIND = (
    "; nothing would mount the volume. Remove it or point it at another service first "
    "(PUT .../volumes, `moorage apps volumes set`), or keep the service in the file"
)


def check_bound(
    registry: Registry,
    kind: str,
    config: dict[str, Any],
    env: dict[str, str],
    volumes: Iterable[tuple[str, str | None]],
) -> None:
    """Each ``(name, service)`` volume of a stack workload binds into a service ``config``
    runs with ``env``: else 422 ``unknown_service`` naming the volume and the service, as
    ``replace`` refuses a new list. A change that replaces the file (a config PATCH, a
    promote, a rollback) checks the saved volumes; a deploy checks them again, for rows
    an older Moorage wrote (the override binds only into services the file has, so
    Compose would drop the volume silently)."""
    volumes = list(volumes)
    source = registry.source(kind)
    if not volumes or not isinstance(source, Stack):
        return
    services = source.service_names(config, env)
    for name, service in volumes:
        _check_service(name, service, services, REBIND)


def check_kept(
    session: Session, registry: Registry, workload: Workload, config: dict[str, Any]
) -> None:
    """``check_bound`` of the workload's saved volumes against a new ``config``."""
    specs = read(session, workload.id)
    if specs:
        pairs = [(v.name, v.service) for v in specs]
        check_bound(registry, workload.kind, config, _env(session, workload.id), pairs)


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
    before = read(session, workload_id)
    if not actor.can("admin"):
        # First, before any path check: an operator is told the rule that stops them,
        # not how a host path would have to look (roots, links) for an admin.
        _check_absolute_kept(before, wanted)
        if wanted != before:  # a volume over /bin changes what runs as surely as an image
            powers.check_change(session, actor, workload, "change the volumes of a workload")
    project = project_slug(session, workload)
    services = _services(session, registry, workload) if wanted else None
    names: set[str] = set()
    targets: set[tuple[str | None, str]] = set()
    clean: list[tuple[VolumeSpec, Path]] = []
    for spec in wanted:
        if not is_slug(spec.name):
            raise InvalidInput(
                f"volume name {spec.name!r} must be 1-63 lower-case letters, digits or '-'",
                code="invalid_volume",
            )
        if spec.name in names:
            raise InvalidInput(f"volume name {spec.name!r} is used twice", code="invalid_volume")
        _check_service(spec.name, spec.service, services)
        target = normalize_target(spec.target)
        if (spec.service, target) in targets:
            where = f" in service {spec.service!r}" if spec.service else ""
            raise InvalidInput(f"target {target!r} is mounted twice{where}", code="invalid_volume")
        path = path_of(settings, project, workload.stage, spec.scope, spec.source)
        names.add(spec.name)
        targets.add((spec.service, target))
        saved = VolumeSpec(
            spec.name, spec.scope, spec.source, target, spec.read_only, spec.shared, spec.service
        )
        clean.append((saved, path))
    check_nesting(session, settings, workload_id, [(s.name, p) for s, p in clean])
    check_sharing(session, settings, workload_id, clean, actor)
    for row in session.scalars(select(Volume).where(Volume.workload_id == workload_id)):
        session.delete(row)
    session.flush()
    specs = [spec for spec, _ in clean]
    for position, spec in enumerate(specs):
        session.add(Volume(workload_id=workload_id, position=position, **spec.as_dict()))
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_VOLUMES_REPLACE,
        "workload",
        workload_id,
        {"volumes": [v.as_dict() for v in specs]},
    )
    return specs


def path_of(settings: Settings, project: str, stage: str, scope: str, source: str) -> Path:
    """The host path of a volume of a workload in ``project``/``stage`` (422 when its
    source breaks its scope's rules): ``volumes.paths.host_path`` with the settings'."""
    return host_path(
        data_dir=settings.data_dir,
        volume_roots=settings.volume_roots,
        project=project,
        stage=stage,
        scope=scope,
        source=source,
    )


def mounted_by_others(session: Session, settings: Settings, workload_id: str) -> Iterator[Mounted]:
    """Every volume of every other workload, at its real host path; a row whose path no
    longer derives (say, ``MOORAGE_VOLUME_ROOTS`` changed) mounts nothing and is skipped."""
    rows = session.execute(
        select(
            Volume.workload_id,
            Workload.name,
            Project.slug,
            Workload.stage,
            Volume.name,
            Volume.scope,
            Volume.shared,
            Volume.source,
        )
        .join(Workload, Workload.id == Volume.workload_id)
        .join(Project, Project.id == Workload.project_id)
        .where(Volume.workload_id != workload_id)
        .order_by(Workload.created_at, Volume.position)
    ).all()
    for other_id, other, project, stage, volume, scope, shared, source in rows:
        try:
            path = path_of(settings, project, stage, scope, source)
        except MoorageError:
            continue
        yield Mounted(other_id, other, project, stage, volume, scope, shared, real_path(path), path)


def check_nesting(
    session: Session, settings: Settings, workload_id: str, mine: list[tuple[str, Path]]
) -> None:
    """Refuse a volume whose host directory lies inside another volume's, or holds one.

    ``mine`` is the workload's (volume name, host path) list. Paths are compared both
    as derived and with symlinks resolved, each form against each, against each other
    and against every other workload's volumes: ``x/d``, where ``d`` is a link a
    container made in volume ``x``, resolves elsewhere but lies inside ``x`` as written,
    and the container could point the link at ``/`` before the next start. Raises
    ``Conflict`` 409 ``volume_nested`` naming both volumes (and the other workload);
    equal paths are not nesting (sharing has its own rule).
    """
    forms = [(name, (Path(os.path.normpath(path)), real_path(path))) for name, path in mine]
    for i, (name, paths) in enumerate(forms):
        for other, other_paths in forms[i + 1 :]:
            if _nested(paths, other_paths):
                raise Conflict(
                    f"volume {name!r} ({paths[0]}) and volume {other!r} ({other_paths[0]}) are "
                    "nested; a container could swap a directory on the inner one's path for a "
                    "link",
                    code="volume_nested",
                )
    for theirs in mounted_by_others(session, settings, workload_id):
        for name, paths in forms:
            path = paths[0]
            if _nested(paths, (theirs.path, theirs.lexical)):
                raise Conflict(
                    f"volume {name!r} ({path}) is nested with volume {theirs.volume!r} of "
                    f"{theirs.named()} ({theirs.path}); a container of one could swap a "
                    "directory on the other's path for a link",
                    code="volume_nested",
                    details=[theirs.detail(name)],
                )


def _nested(one: tuple[Path, ...], other: tuple[Path, ...]) -> bool:
    """Whether a form of one path lies strictly inside a form of the other (or holds
    one). Equal forms (the same directory) are sharing, not nesting."""
    for a in one:
        for b in other:
            if a != b and (a.is_relative_to(b) or b.is_relative_to(a)):
                return True
    return False


def check_sharing(
    session: Session,
    settings: Settings,
    workload_id: str,
    mine: list[tuple[VolumeSpec, Path]],
    actor: Actor | None = None,
) -> None:
    """Refuse (409 ``volume_in_use``, naming the other workload) a stage or project
    directory another workload mounts too, unless both volumes say ``shared``; and (403
    ``needs_admin``) a non-admin ``actor`` sharing one with a workload that holds host
    powers or an ``absolute`` volume: what that workload runs from its volume would be
    theirs to write (``powers.check_change``)."""
    real = [(spec, real_path(path)) for spec, path in mine]
    for theirs in mounted_by_others(session, settings, workload_id):
        for spec, path in real:
            if path != theirs.path:
                continue
            if not {spec.scope, theirs.scope} & set(SHARABLE_SCOPES):
                continue  # two absolute paths: an admin's choice (a restore refuses it)
            if spec.shared and theirs.shared:
                if actor is not None:
                    other = session.get(Workload, theirs.workload_id)
                    if other is not None:
                        powers.check_change(session, actor, other, "share a volume with a workload")
                continue
            raise Conflict(
                f"volume {spec.name!r} ({path}) is also mounted by {theirs.named()} as its "
                f"volume {theirs.volume!r}; two workloads share a directory only when both "
                'volumes set "shared": true',
                code="volume_in_use",
                details=[theirs.detail(spec.name)],
            )
