"""A workload's capture hooks: commands run in its running container before and after
every capture (SPEC section 10), e.g. a database dump into a volume, or a flush.

Stored on the workload as ``{"before"?: {"service"?, "command"}, "after"?: {...},
"timeout_s"}``. A ``command`` is an argv (never a shell line: a hook that wants a shell
says ``["sh", "-c", "..."]``), a non-empty list of at most ``MAX_ARGS`` strings without
NUL. A stack kind's hook names the service whose container runs it (one of the file's
services, resolved with the workload's env); another kind's names none. ``timeout_s``
bounds each hook, 1 to ``MAX_TIMEOUT_S`` seconds. What runs them is
``snapshots.hooks``; a ``before`` that fails fails the capture, ``after`` always runs.

Hooks run as the container's user (often root) inside the workload, so they reach what
the workload reaches. On a workload holding host powers (``services/powers``: the Docker
socket, a host path...) or whose saved config asks for one, setting, changing or clearing
its hooks is an admin's (403 ``needs_admin``): otherwise an operator would use a power an
admin granted for the workload's own program. The stored hooks remember whether an admin
saved them (``set_by_admin``, not part of the API's view). When an admin later grants a
power to a workload whose hooks an operator saved, the hooks are kept but do not run:
every capture fails naming why (``refusal``) until an admin saves them again (or clears
them). The grant's reviewer saw the config, not the hooks, so the grant does not approve
them; failing loudly beats a capture silently taken without its dump.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from moorage.errors import InvalidInput
from moorage.plugins.registry import Registry
from moorage.plugins.spec import HostPower, Stack
from moorage.security.roles import Actor
from moorage.services import audit, powers
from moorage.services import env as env_service
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.settings import Settings
from moorage.store.tables import Workload

DEFAULT_TIMEOUT_S = 300
MAX_TIMEOUT_S = 3600
MAX_ARGS = 256
MAX_ARG_CHARS = 65536
PHASES = ("before", "after")


@dataclass(frozen=True)
class Hook:
    """One command, and the service whose container runs it (None: the workload's one)."""

    command: tuple[str, ...]
    service: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"command": list(self.command), "service": self.service}


@dataclass(frozen=True)
class Hooks:
    """Both hooks and their timeout; ``set_by_admin``: an admin saved them (kept in the
    row, left out of ``as_dict``, the API's view)."""

    before: Hook | None = None
    after: Hook | None = None
    timeout_s: int = DEFAULT_TIMEOUT_S
    set_by_admin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.as_dict() if self.before else None,
            "after": self.after.as_dict() if self.after else None,
            "timeout_s": self.timeout_s,
        }

    @property
    def empty(self) -> bool:
        return self.before is None and self.after is None


def _hook(stored: Any) -> Hook | None:
    if not isinstance(stored, dict):
        return None
    return Hook(tuple(str(a) for a in stored.get("command", [])), stored.get("service"))


def of(stored: dict[str, Any] | None) -> Hooks:
    """The hooks a workload row keeps (none for ``None``)."""
    if not stored:
        return Hooks()
    return Hooks(
        _hook(stored.get("before")),
        _hook(stored.get("after")),
        int(stored.get("timeout_s", DEFAULT_TIMEOUT_S)),
        stored.get("set_by_admin") is True,
    )


def read(session: Session, workload_id: str) -> Hooks:
    """The workload's hooks; NotFound for an unknown workload."""
    return of(get_workload(session, workload_id).snapshot_hooks)


def host_powers_of(
    session: Session, registry: Registry, settings: Settings, workload: Workload
) -> list[HostPower]:
    """The powers the workload holds, its ``absolute`` volumes, and the powers its saved
    config and env ask for."""
    asked = registry.source(workload.kind).host_powers(powers.view_of(session, workload), settings)
    holds = powers.guarded(session, workload)
    return holds + [p for p in asked if p not in holds]


def refusal(session: Session, workload: Workload, hooks: Hooks) -> str | None:
    """Why ``hooks`` may not run on ``workload`` now (None: they may): an operator saved
    them and the workload has since been granted host powers, or an ``absolute`` volume."""
    if hooks.empty or hooks.set_by_admin or not powers.guarded(session, workload):
        return None
    return (
        "the capture hooks were saved by an operator and the workload has since been "
        "granted host powers or an absolute volume by an admin; they do not run until an "
        "admin saves them again (or clears them)"
    )


def _bad(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_hook", details=[{"field": field}])


def _check(phase: str, hook: Hook, services: list[str] | None) -> None:
    if not hook.command:
        raise _bad(f"{phase}.command must name a program and its arguments", f"{phase}.command")
    if len(hook.command) > MAX_ARGS:
        raise _bad(f"{phase}.command takes at most {MAX_ARGS} arguments", f"{phase}.command")
    for arg in hook.command:
        if "\x00" in arg or len(arg) > MAX_ARG_CHARS:
            raise _bad(
                f"{phase}.command: an argument holds a NUL or is over {MAX_ARG_CHARS} characters",
                f"{phase}.command",
            )
    if not hook.command[0]:
        raise _bad(f"{phase}.command starts with an empty program name", f"{phase}.command")
    if services is None:
        if hook.service is not None:
            raise _bad(
                f"{phase}.service: only a compose workload's hooks name a service",
                f"{phase}.service",
            )
        return
    if hook.service not in services:
        said = "names no service" if hook.service is None else f"names {hook.service!r}"
        raise InvalidInput(
            f"{phase}.service {said}: name the Compose service whose container runs it "
            f"(one of: {', '.join(services) or 'none'})",
            code="unknown_service",
            details=[{"field": f"{phase}.service", "service": hook.service}],
        )


def replace(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    workload_id: str,
    hooks: Hooks,
) -> Hooks:
    """Check and store the hooks (no hook at all clears them); one audit row.

    Raises Forbidden 403 ``needs_admin`` for a non-admin when the workload holds or asks
    for host powers (see the module's text), InvalidInput 422 ``invalid_hook`` (an empty
    or NUL-holding command, a timeout out of bounds, a service on a one-container kind)
    or ``unknown_service`` (a stack's hook naming no service of its file), and NotFound.
    """
    workload = get_workload(session, workload_id)
    if not actor.can("admin"):
        held_or_asked = host_powers_of(session, registry, settings, workload)
        if held_or_asked:
            raise powers.needs_admin(held_or_asked, "set the capture hooks of a workload")
    hooks = Hooks(hooks.before, hooks.after, hooks.timeout_s, set_by_admin=actor.can("admin"))
    if not 1 <= hooks.timeout_s <= MAX_TIMEOUT_S:
        raise _bad(f"timeout_s must be between 1 and {MAX_TIMEOUT_S} seconds", "timeout_s")
    source = registry.source(workload.kind)
    services: list[str] | None = None
    if isinstance(source, Stack) and not hooks.empty:
        env = {row.key: row.value for row in env_service.rows(session, workload_id)}
        services = source.service_names(dict(workload.config), env)
    for phase in PHASES:
        hook = getattr(hooks, phase)
        if hook is not None:
            _check(phase, hook, services)
    stored = {**hooks.as_dict(), "set_by_admin": hooks.set_by_admin}
    workload.snapshot_hooks = None if hooks.empty else stored
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_SNAPSHOT_HOOKS,
        "workload",
        workload_id,
        {"hooks": workload.snapshot_hooks},
    )
    return hooks
