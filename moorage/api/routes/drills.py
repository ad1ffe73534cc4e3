"""Restore drills: prove a snapshot restores, in a sandbox (SPEC section 10)."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import DrillIn, DrillList, DrillOut, DrillStanding, DrillStandingList
from moorage.api.schemas.output import read_as
from moorage.errors import NotFound
from moorage.security.roles import Actor
from moorage.services import drills

HIDDEN = "the drill failed; an operator can read why in its log"

router = APIRouter(prefix="/api/workloads/{workload_id}", tags=["drills"])
standings_router = APIRouter(prefix="/api/drills", tags=["drills"])


@router.post("/snapshots/{snapshot_id}/drills", status_code=202, responses=responses(409))
def start_drill(
    workload_id: str,
    snapshot_id: str,
    actor: Operator,
    session: DbSession,
    state: State,
    body: DrillIn | None = None,
) -> DrillOut:
    """Restore the snapshot into a sandbox (own names and network, no published port),
    start it, run the check, remove the sandbox. The live workload is not touched."""
    raw = body.check.model_dump(exclude_none=True) if body and body.check else {}
    check = drills.parse_check(raw)
    drill = drills.request(session, actor, state.registry, workload_id, snapshot_id, check)
    out = DrillOut.model_validate(drill, context=read_as(actor))
    session.commit()
    state.drills.start(drill.id)
    return out


def shown(drill: object, actor: Actor) -> DrillOut:
    """The drill as ``actor`` may see it: a viewer gets no log and no error text, since a
    check's output (``env``, a page, a query's rows) may print what only operators read,
    as container logs and env values are theirs (stricter than ``ProgramText`` alone: the
    check's own command line is in them too)."""
    out = DrillOut.model_validate(drill, context=read_as(actor))
    if actor.can("operator"):
        return out
    return out.model_copy(update={"log": "", "error": HIDDEN if out.error else None})


@router.get("/snapshots/{snapshot_id}/drills")
def list_snapshot_drills(
    workload_id: str, snapshot_id: str, actor: Viewer, session: DbSession
) -> DrillList:
    rows = drills.list_for(session, workload_id, snapshot_id)
    return DrillList(items=[shown(d, actor) for d in rows])


@router.get("/snapshots/{snapshot_id}/drills/{drill_id}")
def get_drill(
    workload_id: str, snapshot_id: str, drill_id: str, actor: Viewer, session: DbSession
) -> DrillOut:
    drill = drills.get(session, workload_id, drill_id)
    if drill.snapshot_id != snapshot_id:
        raise NotFound(f"no drill {drill_id!r} of snapshot {snapshot_id!r}")
    return shown(drill, actor)


@router.get("/drills")
def list_drills(workload_id: str, actor: Viewer, session: DbSession) -> DrillList:
    """The workload's last 100 drills, of every snapshot, newest first."""
    rows = drills.list_for(session, workload_id)
    return DrillList(items=[shown(d, actor) for d in rows])


@standings_router.get("/standings")
def drill_standings(actor: Viewer, session: DbSession) -> DrillStandingList:
    """Per drilled workload: its newest ended drill and when a drill last passed."""
    return DrillStandingList(items=[DrillStanding(**vars(st)) for st in drills.standings(session)])
