"""A workload's environment variables."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from moorage.api.deps import DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.schemas import EnvValue, RevealedEnv
from moorage.services import env, guard
from moorage.services.audit import AuditAction

router = APIRouter(prefix="/api/workloads/{workload_id}/env", tags=["env"])


def _shown(values: dict[str, dict[str, Any]]) -> dict[str, EnvValue]:
    return {k: EnvValue(value=v["value"], secret=v["secret"]) for k, v in values.items()}


@router.get("")
def read_env(workload_id: str, actor: Operator, session: DbSession) -> dict[str, EnvValue]:
    return _shown(env.read(session, workload_id))


@router.get("/{key}")
def reveal_env(workload_id: str, key: str, actor: Operator, session: DbSession) -> RevealedEnv:
    """One variable with its stored value, secret or not; the audit log records who looked."""
    row = env.reveal(session, actor, workload_id, key)
    return RevealedEnv(key=row.key, value=row.value, secret=row.secret)


@router.put("", responses=responses(409, 503))
def replace_env(
    workload_id: str, body: dict[str, EnvValue], actor: Operator, session: DbSession, state: State
) -> dict[str, EnvValue]:
    wanted = {k: v.model_dump() for k, v in body.items()}
    locks = state.deployer.locks
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_ENV_REPLACE, workload_id):
        saved = env.replace(session, actor, state.registry, state.settings, workload_id, wanted)
    return _shown(saved)
