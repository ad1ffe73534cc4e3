"""Projects and their stages."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import Admin, DbSession, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import ProjectIn, ProjectList, ProjectOut, ProjectPatch
from moorage.services import projects

router = APIRouter(prefix="/api/projects", tags=["projects"])


@router.get("")
def list_projects(actor: Viewer, session: DbSession) -> ProjectList:
    return ProjectList(items=[ProjectOut.model_validate(p) for p in projects.list_all(session)])


@router.post("", status_code=201, responses=responses(409))
def create_project(body: ProjectIn, actor: Admin, session: DbSession) -> ProjectOut:
    project = projects.create(
        session, actor, slug=body.slug, stages=body.stages, description=body.description
    )
    return ProjectOut.model_validate(project)


@router.get("/{slug}")
def get_project(slug: str, actor: Viewer, session: DbSession) -> ProjectOut:
    return ProjectOut.model_validate(projects.get(session, slug))


@router.patch("/{slug}", responses=responses(409))
def update_project(slug: str, body: ProjectPatch, actor: Admin, session: DbSession) -> ProjectOut:
    project = projects.update(
        session, actor, slug, stages=body.stages, description=body.description
    )
    return ProjectOut.model_validate(project)


@router.delete("/{slug}", status_code=204, responses=responses(409))
def delete_project(slug: str, actor: Admin, session: DbSession) -> None:
    projects.delete(session, actor, slug)
