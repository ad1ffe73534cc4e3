"""Host powers: who may grant what a workload asks of Docker (``sources/policy/``).

Every change that alters what Docker would run (create, a config PATCH, a promote, an
env change: ``${NAME}`` in a Compose file resolves to the env) asks the kind which host
powers the result needs. Those the workload already holds (``Workload.host_powers``)
stay; any other needs an admin: an operator gets 403 ``needs_admin`` naming each one,
and nothing changes. What is allowed is stored on the workload and named in the audit
row of the change. A deploy checks again (``refused``): a workload whose config and env
now resolve to more than it holds does not run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Forbidden
from moorage.plugins.registry import Registry
from moorage.plugins.spec import HostPower, WorkloadView
from moorage.security.roles import Actor
from moorage.settings import Settings
from moorage.store.tables import EnvVar, Project, Volume, Workload

SHOWN = 5  # powers named in the message; the details name all of them


def held(workload: Workload) -> list[HostPower]:
    return [HostPower(**p) for p in workload.host_powers or []]


def view_of(
    session: Session,
    workload: Workload,
    *,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> WorkloadView:
    """The workload as Docker would run it with ``config`` and ``env`` (default: saved).

    Its Moorage volumes are left out: the policy counts them as the workload's own (the
    container mounts exactly them), so they change no verdict.
    """
    project = session.scalar(select(Project.slug).where(Project.id == workload.project_id))
    if env is None:
        rows = session.scalars(select(EnvVar).where(EnvVar.workload_id == workload.id))
        env = {row.key: row.value for row in rows}
    return WorkloadView(
        id=workload.id,
        name=workload.name,
        kind=workload.kind,
        project=str(project),
        stage=workload.stage,
        config=dict(workload.config if config is None else config),
        env=dict(env),
    )


def absolute_volumes(session: Session, workload: Workload) -> list[HostPower]:
    """The workload's ``absolute`` volumes (host paths only an admin may mount, SPEC 9) as
    powers: what runs with them is the admin's to approve, as for a granted power."""
    rows = session.scalars(
        select(Volume)
        .where(Volume.workload_id == workload.id, Volume.scope == "absolute")
        .order_by(Volume.position)
    )
    return [
        HostPower("absolute_volume", v.name, f"host path {v.source!r} at {v.target!r}")
        for v in rows
    ]


def guarded(session: Session, workload: Workload) -> list[HostPower]:
    """What makes a workload the admin's to change (empty: anyone's): the powers it holds
    and its ``absolute`` volumes."""
    return held(workload) + absolute_volumes(session, workload)


def check_change(session: Session, actor: Actor, workload: Workload, what: str) -> None:
    """Raise 403 ``needs_admin`` when a non-admin changes what runs in a workload that holds
    host powers or an ``absolute`` volume: a grant is for what the admin saw run with it.
    Its config, env (``LD_PRELOAD`` or ``PATH`` change the program as surely as the image
    does), volumes (one mounted over ``/bin``) and capture hooks (commands run in it) are
    all what runs; deploying, stopping and starting it as it is are not changes."""
    if actor.can("admin"):
        return
    powers = guarded(session, workload)
    if powers:
        raise needs_admin(powers, what)


def _env_of(session: Session, workload: Workload) -> dict[str, str]:
    rows = session.scalars(select(EnvVar).where(EnvVar.workload_id == workload.id))
    return {row.key: row.value for row in rows}


def ungranted(asked: list[HostPower], holds: list[HostPower]) -> list[HostPower]:
    return [p for p in asked if p not in holds]


def needs_admin(powers: list[HostPower], what: str) -> Forbidden:
    names = "; ".join(str(p) for p in powers[:SHOWN])
    more = f" and {len(powers) - SHOWN} more" if len(powers) > SHOWN else ""
    return Forbidden(
        f"only an admin may {what} that asks Docker for host powers: {names}{more}",
        code="needs_admin",
        details=[
            {
                "field": "config",
                "service": p.where,
                "power": p.power,
                "detail": p.detail,
                "message": str(p),
            }
            for p in powers
        ],
    )


def review(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    workload: Workload,
    view: WorkloadView,
    *,
    what: str = "save a workload",
) -> dict[str, Any]:
    """Check ``view`` (the workload as it is about to be); raise 403 ``needs_admin`` for a
    power it does not hold unless ``actor`` is an admin; record what it now holds.

    A workload that holds powers, or an ``absolute`` volume (a host path an admin chose),
    keeps them only for what an admin approved: an operator changing its config or its
    env gets 403 ``needs_admin`` too (``check_change``), even when the result asks for
    the same powers, unless the new config asks for none and it has no absolute volume.

    Returns what the change's audit row adds: the powers held and those just granted.
    """
    asked = registry.source(view.kind).host_powers(view, settings)
    holds = held(workload)
    new = ungranted(asked, holds)
    if new and not actor.can("admin"):
        raise needs_admin(new, what)
    config_changed = view.config != workload.config
    if config_changed or view.env != _env_of(session, workload):
        # A grant is for what the admin saw run with it: another image, command, file or
        # env keeping the same mounts is a new use of the power. A config that asks for
        # nothing any more (powers dropped, no absolute volume) is anyone's to save.
        if asked or absolute_volumes(session, workload):
            doing = f"{what}: change the config of a workload" if config_changed else what
            check_change(session, actor, workload, doing)
    stored = [p.as_dict() for p in asked]
    if workload.host_powers != stored:  # an unchanged row stays unwritten (the list cache)
        workload.host_powers = stored
    audit: dict[str, Any] = {}
    if asked:
        audit["host_powers"] = [str(p) for p in asked]
    if new:
        audit["host_powers_granted"] = [str(p) for p in new]
    return audit


def check_deploy(asked: list[HostPower], holds: list[HostPower]) -> None:
    """A deploy's last check, on what it is about to run: raise 403 ``needs_admin`` when
    that asks for more than the workload holds (nothing is run then)."""
    new = ungranted(asked, holds)
    if new:
        raise needs_admin(new, "deploy a workload")
