"""Workloads: create, read, update, delete, with config validated by their kind."""

from __future__ import annotations

import re
from collections import namedtuple
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Row, Select, or_, select, true
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session, aliased

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.names import check_slug, new_id
from moorage.plugins.kind_config import kept_but_moved, public_config, stored_config
from moorage.plugins.registry import Registry
from moorage.plugins.spec import FixedPorts
from moorage.security.roles import Actor
from moorage.services import audit, inputs, powers, projects
from moorage.services.audit import AuditAction
from moorage.services.guard import flush_or_conflict
from moorage.services.merge_patch import merge_patch
from moorage.settings import Settings
from moorage.store.bulk import Fetched, fetch_rows
from moorage.store.states import DesiredState
from moorage.store.tables import (
    Binding,
    ChainLink,
    Deployment,
    Project,
    Restore,
    Snapshot,
    Workload,
)

REF_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def get(session: Session, workload_id: str) -> Workload:
    workload = session.get(Workload, workload_id)
    if workload is None:
        raise NotFound(f"no workload {workload_id!r}")
    return workload


def list_query(
    *,
    project: str | None = None,
    stage: str | None = None,
    kind: str | None = None,
    workload_id: str | None = None,
) -> Select[*tuple[Any, ...]]:
    """The SELECT of the workload list: the workload's columns, ``project`` and the
    latest deployment's ``last_*``, filtered; unordered (``fetch_listed`` sorts). The
    latest deployment is found per workload through its index, so the cost does not grow
    with the deployment history."""
    latest = (
        select(Deployment.id)
        .where(Deployment.workload_id == Workload.id)
        .order_by(Deployment.created_at.desc(), Deployment.id.desc())
        .limit(1)
        .correlate(Workload)
        .scalar_subquery()
    )
    last = aliased(Deployment)
    query = (
        select(
            # host_powers is the policy's, not the list's: one JSON column less to decode
            *(c for c in Workload.__table__.c if c.name != "host_powers"),
            Project.slug.label("project"),
            last.id.label("last_id"),
            last.status.label("last_status"),
            last.created_at.label("last_created_at"),
            last.finished_at.label("last_finished_at"),
        )
        .join(Project, Project.id == Workload.project_id)
        .outerjoin(last, last.id == latest)
    )
    if project is not None:
        query = query.where(Project.slug == project)
    if stage is not None:
        query = query.where(Workload.stage == stage)
    if kind is not None:
        query = query.where(Workload.kind == kind)
    if workload_id is not None:
        query = query.where(Workload.id == workload_id)
    return query


def fetch_listed(session: Session, **wanted: str | None) -> Fetched:
    """The list's rows as the driver gave them (``store.bulk.fetch_rows``: one driver
    step for the whole list, read while deploys commit), ordered by project slug, stage
    and name (by code point, on both databases). ``wanted``: ``list_query``'s filters.
    ``as_listed`` makes a row of it."""
    fetched = fetch_rows(session, list_query(**wanted))
    at = [fetched.names.index(n) for n in ("project", "stage", "name")]
    fetched.raw.sort(key=lambda r: tuple(r[i] for i in at))
    return fetched


def as_listed(fetched: Fetched, raw: tuple[Any, ...]) -> Any:
    """One row of ``fetch_listed`` as a named tuple of the ORM's values (``r.config`` a
    dict, ``r.created_at`` an aware instant, ``r.last_status`` a state or None)."""
    return _listed_row(fetched.names)(*fetched.values(raw))


@lru_cache(maxsize=4)
def _listed_row(names: tuple[str, ...]) -> Any:
    return namedtuple("ListedWorkload", names)


def list_filtered(session: Session, **wanted: str | None) -> list[Any]:
    """The listed workloads (``as_listed`` rows) matching ``wanted`` (``list_query``'s
    filters), ordered as ``fetch_listed`` orders them."""
    fetched = fetch_listed(session, **wanted)
    return [as_listed(fetched, raw) for raw in fetched.raw]


def listed(session: Session, workload_id: str) -> Any:
    """One workload in the shape of ``list_filtered``; ``NotFound`` for no such workload."""
    rows = list_filtered(session, workload_id=workload_id)
    if not rows:
        raise NotFound(f"no workload {workload_id!r}")
    return rows[0]


OfWorkload = TypeVar("OfWorkload", Deployment, Snapshot, Restore)


def history(
    session: Session, table: type[OfWorkload], workload_id: str, *, limit: int | None = None
) -> list[OfWorkload]:
    """The workload's rows of ``table`` (deployments, snapshots, restores), newest first,
    at most ``limit``; ``NotFound`` for no such workload."""
    get(session, workload_id)
    newest_first = table.created_at.desc()
    query = select(table).where(table.workload_id == workload_id).order_by(newest_first)
    return list(session.scalars(query.limit(limit)))


def deployments(session: Session, workload_id: str, *, limit: int) -> list[Deployment]:
    """The workload's last ``limit`` deployments, newest first; ``NotFound`` for no such
    workload."""
    return history(session, Deployment, workload_id, limit=limit)


def deployment(session: Session, workload_id: str, deployment_id: str) -> Deployment:
    """One deployment of the workload; ``NotFound`` when it is not one of its."""
    found = session.get(Deployment, deployment_id)
    if found is None or found.workload_id != workload_id:
        raise NotFound(f"no deployment {deployment_id!r} of workload {workload_id!r}")
    return found


def pending_changes(w: Workload | Row[Any]) -> bool:
    """A saved change of config, env or volumes that no successful deploy has run."""
    return inputs.pending(w.saved_digest, w.deployed_digest)


def set_desired_state(session: Session, workload_id: str, desired: DesiredState) -> Workload:
    """What reconcile keeps the workload at: ``running`` or ``stopped`` (SPEC section 9).
    The caller acts on it (``Deployer.converge``) once it is committed."""
    workload = get(session, workload_id)
    if workload.desired_state != desired:
        workload.desired_state = DesiredState(desired)
    return workload


def _check_ports(
    session: Session, registry: Registry, kind: str, config: dict[str, Any], exclude: str
) -> None:
    """Refuse (409 ``port_in_use``) a fixed host port another workload's config publishes."""
    mine = _fixed_ports(registry, kind, config)
    if not mine:
        return
    others = session.execute(
        select(Workload.id, Workload.name, Workload.kind, Workload.config, Workload.stage)
        .where(Workload.id != exclude)
        .order_by(Workload.created_at)
    )
    for other_id, name, other_kind, other_config, stage in others:
        clash = sorted(mine & _fixed_ports(registry, other_kind, other_config))
        if clash:
            port, protocol = clash[0]
            raise Conflict(
                f"host port {port}/{protocol} is already published by workload {name!r} "
                f"({other_id}, stage {stage}); pick another or leave it empty",
                code="port_in_use",
                details=[
                    {
                        "field": "config.ports",
                        "port": port,
                        "workload": other_id,
                        "workload_name": name,
                    }
                ],
            )


def _fixed_ports(registry: Registry, kind: str, config: dict[str, Any]) -> set[tuple[int, str]]:
    source = registry.sources.get(kind)
    return set(source.host_ports(config)) if isinstance(source, FixedPorts) else set()


def project_slug(session: Session, workload: Workload) -> str:
    slug = session.scalar(select(Project.slug).where(Project.id == workload.project_id))
    assert slug is not None
    return slug


def shown_config(registry: Registry, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as clients see it: secrets masked by the kind's model."""
    source = registry.sources.get(kind)
    if source is None:
        return {}
    return public_config(source.config_model, config)


def validated(registry: Registry, kind: str, config: Any) -> BaseModel:
    """The kind's check of a config (its host powers are ``services.powers``' to judge)."""
    return registry.source(kind).validate(config)


def _check_unique(
    session: Session,
    *,
    project_id: str,
    stage: str,
    name: str,
    kind: str,
    ref_id: str,
    exclude: str | None = None,
    named: bool = True,
) -> None:
    """Refuse (409 ``duplicate``) a name or ref_id another workload has; ``named``: the
    name is new (a create, a rename), so no renamed stack may still run under it."""
    clash = select(Workload).where(
        or_(
            (Workload.project_id == project_id)
            & (Workload.stage == stage)
            & (Workload.name == name),
            (Workload.kind == kind) & (Workload.ref_id == ref_id),
        )
    )
    if exclude is not None:
        clash = clash.where(Workload.id != exclude)
    other = session.scalars(clash).first()
    if other is None:
        if named:
            _check_compose_project_free(
                session, project_id=project_id, stage=stage, name=name, exclude=exclude
            )
        return
    if other.name == name and other.project_id == project_id and other.stage == stage:
        raise Conflict(f"a workload named {name!r} already exists in that stage", code="duplicate")
    raise Conflict(f"a {kind} workload with ref_id {ref_id!r} already exists", code="duplicate")


def _check_compose_project_free(
    session: Session, *, project_id: str, stage: str, name: str, exclude: str | None = None
) -> None:
    """Refuse (409 ``duplicate``) a name whose Compose project another workload of the
    stage still runs under: a Compose workload keeps the project of its first deploy when
    renamed (``compose_project``), so a new workload taking its old name would take over
    its containers."""
    from moorage.sources.compose import ComposeSource  # the kind and its naming rule
    from moorage.sources.compose.deploy import project_name

    slug = session.scalar(select(Project.slug).where(Project.id == project_id))
    wanted = project_name(str(slug), stage, name)
    rows = session.execute(
        select(Workload.name, Deployment.artifact)
        .join(Deployment, Deployment.workload_id == Workload.id)
        .where(Workload.project_id == project_id, Workload.stage == stage)
        .where(Workload.kind == ComposeSource.kind)
        .where(Workload.id != exclude if exclude is not None else true())
    )
    for other, artifact in rows:
        if isinstance(artifact, dict) and artifact.get("project") == wanted:
            raise Conflict(
                f"the name {name!r} is still the Compose project of workload {other!r} (it "
                "was renamed from it, and its containers keep the project); pick another name",
                code="duplicate",
            )


def create(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    *,
    name: str,
    kind: str,
    project: str,
    stage: str,
    config: Any,
    ref_id: str | None = None,
) -> Workload:
    check_slug("workload name", name)
    model = validated(registry, kind, config)
    try:
        owner = projects.get(session, project)
    except NotFound:
        raise InvalidInput(
            f"project {project!r} does not exist; create it first", code="unknown_project"
        ) from None
    if stage not in owner.stages:
        raise InvalidInput(
            f"stage {stage!r} is not one of project {project!r}'s stages "
            f"({', '.join(owner.stages)})",
            code="unknown_stage",
        )
    workload_id = new_id("wl")
    ref = ref_id or workload_id
    if not REF_ID_RE.fullmatch(ref):
        raise InvalidInput(
            "ref_id must be 1-128 letters, digits or '._:/-', starting with a letter or digit",
            code="invalid_ref_id",
        )
    _check_unique(session, project_id=owner.id, stage=stage, name=name, kind=kind, ref_id=ref)
    _check_ports(session, registry, kind, stored_config(model), workload_id)
    workload = Workload(
        id=workload_id,
        kind=kind,
        ref_id=ref,
        name=name,
        project_id=owner.id,
        stage=stage,
        config=stored_config(model),
        host_powers=[],
    )
    granted = powers.review(
        session, actor, registry, settings, workload, powers.view_of(session, workload, env={})
    )
    session.add(workload)
    flush_or_conflict(session, f"workload {name!r} clashes with an existing one")
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_CREATE,
        "workload",
        workload_id,
        {"name": name, "kind": kind, "project": project, "stage": stage, **granted},
    )
    return workload


def update(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    workload_id: str,
    *,
    name: str | None = None,
    config: Any = None,
    ref_id: str | None = None,
) -> Workload:
    workload = get(session, workload_id)
    changed: list[str] = []
    granted: dict[str, Any] = {}
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidInput("config must be a JSON object", code="invalid_config")
        model = validated(registry, workload.kind, merge_patch(workload.config, config))
        stored = stored_config(model)
        kept = kept_but_moved(type(model), workload.config, config, stored)
        if kept:
            # As for storage targets: a registry login goes only to the registry it was
            # saved for, so pointing it elsewhere (its server, its username) needs it again.
            raise InvalidInput(
                f"send {', '.join(kept)} again with this change: a stored credential is "
                "only sent where it was sent before",
                code="invalid_config",
                details=[{"field": f"config.{k}", "message": "send it again"} for k in kept],
            )
        with session.no_autoflush:
            _check_ports(session, registry, workload.kind, stored, workload.id)
            view = powers.view_of(session, workload, config=stored)
            from moorage.services import volumes  # which imports this module

            volumes.check_kept(session, registry, workload, stored)
        granted = powers.review(session, actor, registry, settings, workload, view)
        workload.config = stored
        changed.append("config")
    if name is not None and name != workload.name:
        check_slug("workload name", name)
        workload.name = name
        changed.append("name")
    if ref_id is not None and ref_id != workload.ref_id:
        if not REF_ID_RE.fullmatch(ref_id):
            raise InvalidInput(
                "ref_id must be 1-128 letters, digits or '._:/-'", code="invalid_ref_id"
            )
        workload.ref_id = ref_id
        changed.append("ref_id")
    # No autoflush: flushing the changed row inside the check would hit the unique
    # constraint as a raw IntegrityError (a 500) before the check can answer 409.
    with session.no_autoflush:
        _check_unique(
            session,
            project_id=workload.project_id,
            stage=workload.stage,
            name=workload.name,
            kind=workload.kind,
            ref_id=workload.ref_id,
            exclude=workload.id,
            named="name" in changed,
        )
    flush_or_conflict(session, "the new name or ref_id clashes with an existing workload")
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_UPDATE,
        "workload",
        workload.id,
        {"fields": changed, **granted},
    )
    return workload


def delete(session: Session, actor: Actor, workload_id: str) -> None:
    workload = get(session, workload_id)
    # Rows that point at this workload go with it; volume data on disk is kept.
    session.execute(
        sql_delete(ChainLink).where(
            (ChainLink.workload_id == workload.id) | (ChainLink.next_id == workload.id)
        )
    )
    session.execute(sql_delete(Binding).where(Binding.workload_id == workload.id))
    session.execute(sql_delete(Deployment).where(Deployment.workload_id == workload.id))
    session.delete(workload)
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_DELETE,
        "workload",
        workload.id,
        {"name": workload.name},
    )
