"""A workload's chain: the workloads deployed after it succeeds."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.schemas import ChainIn, ChainOut
from moorage.services import chain, guard
from moorage.services.audit import AuditAction

router = APIRouter(prefix="/api/workloads/{workload_id}/chain", tags=["chain"])


@router.get("")
def read_chain(workload_id: str, actor: Operator, session: DbSession) -> ChainOut:
    return ChainOut(next=chain.read(session, workload_id))


@router.put("", responses=responses(409))
def replace_chain(
    workload_id: str, body: ChainIn, actor: Operator, session: DbSession, state: State
) -> ChainOut:
    locks = state.deployer.locks
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_CHAIN_REPLACE, workload_id):
        wanted = chain.replace(session, actor, workload_id, body.next)
    return ChainOut(next=wanted)
