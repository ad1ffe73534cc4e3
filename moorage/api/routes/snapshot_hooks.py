"""A workload's capture hooks (SPEC section 10): read and replace, as one guarded change."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.schemas.snapshot_hooks import HookIn, SnapshotHooksIn, SnapshotHooksOut
from moorage.services import guard, snapshot_hooks
from moorage.services.audit import AuditAction
from moorage.services.snapshot_hooks import Hook, Hooks

router = APIRouter(prefix="/api/workloads/{workload_id}/snapshot-hooks", tags=["snapshots"])


def _out(hooks: Hooks) -> SnapshotHooksOut:
    return SnapshotHooksOut.model_validate(hooks.as_dict())


def _hook(body: HookIn | None) -> Hook | None:
    return None if body is None else Hook(tuple(body.command), body.service)


@router.get("")
def read_hooks(workload_id: str, actor: Operator, session: DbSession) -> SnapshotHooksOut:
    """The commands run before and after each capture (operators: they may hold secrets)."""
    return _out(snapshot_hooks.read(session, workload_id))


@router.put("", responses=responses(409, 503))
def replace_hooks(
    workload_id: str, body: SnapshotHooksIn, actor: Operator, session: DbSession, state: State
) -> SnapshotHooksOut:
    """Replace both hooks (a hook left out is removed; ``{}`` removes both). On a workload
    holding or asking for host powers, admins only (403 ``needs_admin``)."""
    hooks = Hooks(_hook(body.before), _hook(body.after), body.timeout_s)
    locks = state.deployer.locks
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_SNAPSHOT_HOOKS, workload_id):
        saved = snapshot_hooks.replace(
            session, actor, state.registry, state.settings, workload_id, hooks
        )
    return _out(saved)
