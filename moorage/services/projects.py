"""Projects and their ordered stages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.names import check_slug, new_id
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.services.guard import flush_or_conflict
from moorage.store.tables import Project, Workload

DEFAULT_STAGES = ("development", "staging", "production")
MAX_STAGES = 32


def _check_stages(stages: Sequence[str]) -> list[str]:
    if not stages:
        raise InvalidInput("a project needs at least one stage", code="invalid_stages")
    if len(stages) > MAX_STAGES:
        raise InvalidInput(f"a project has at most {MAX_STAGES} stages", code="invalid_stages")
    for stage in stages:
        check_slug("stage", stage)
    if len(set(stages)) != len(stages):
        raise InvalidInput("stage names must be unique", code="invalid_stages")
    return list(stages)


def get(session: Session, slug: str) -> Project:
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        raise NotFound(f"no project {slug!r}")
    return project


def list_all(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.slug)))


def create(
    session: Session,
    actor: Actor,
    *,
    slug: str,
    stages: Sequence[str] | None = None,
    description: str = "",
) -> Project:
    check_slug("project slug", slug)
    clean = _check_stages(DEFAULT_STAGES if stages is None else stages)
    if session.scalar(select(Project.id).where(Project.slug == slug)) is not None:
        raise Conflict(f"project {slug!r} already exists", code="duplicate")
    project = Project(id=new_id("pr"), slug=slug, stages=clean, description=description)
    session.add(project)
    flush_or_conflict(session, f"project {slug!r} already exists")
    audit.record(session, actor, AuditAction.PROJECT_CREATE, "project", slug, {"stages": clean})
    return project


def _workloads_in(session: Session, project: Project, stages: Sequence[str]) -> list[str]:
    rows = session.scalars(
        select(Workload.name).where(
            Workload.project_id == project.id, Workload.stage.in_(list(stages))
        )
    )
    return list(rows)


def update(
    session: Session,
    actor: Actor,
    slug: str,
    *,
    stages: Sequence[str] | None = None,
    description: str | None = None,
) -> Project:
    project = get(session, slug)
    changed: dict[str, object] = {}
    if stages is not None:
        clean = _check_stages(stages)
        removed = [s for s in project.stages if s not in clean]
        in_use = _workloads_in(session, project, removed)
        if in_use:
            raise Conflict(
                f"cannot remove stage(s) {', '.join(removed)}: workloads "
                f"{', '.join(sorted(in_use))} still live there; delete them first",
                code="stage_in_use",
            )
        project.stages = clean
        changed["stages"] = clean
    if description is not None:
        project.description = description
        changed["description"] = True
    audit.record(session, actor, AuditAction.PROJECT_UPDATE, "project", slug, changed)
    return project


def delete(session: Session, actor: Actor, slug: str) -> None:
    project = get(session, slug)
    count = session.scalar(
        select(func.count()).select_from(Workload).where(Workload.project_id == project.id)
    )
    if count:
        raise Conflict(
            f"project {slug!r} still has {count} workload(s); delete them first",
            code="project_not_empty",
        )
    session.delete(project)
    audit.record(session, actor, AuditAction.PROJECT_DELETE, "project", slug)
