"""Who may grant host powers, over the real store and Compose's ``config`` (no engine).

A Compose file whose ``privileged`` comes from ``${P:-false}`` asks for nothing until
its env says ``P=true``: the env change is then a change of what Docker runs.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from moorage.errors import Conflict, Forbidden
from moorage.security.roles import SYSTEM, Actor
from moorage.services import deploys, drills, workloads
from moorage.services import env as env_service
from moorage.store.tables import AuditEntry, Deployment, EnvVar, Workload
from tests.fakes.world import PROJECT, STAGE, World

OPERATOR = Actor(user_id="us_olga", username="olga", role="operator", via="token")
ADMIN = Actor(user_id="us_anna", username="anna", role="admin", via="token")
FILE = "services:\n  web:\n    image: moorage-test/httpd:1\n    privileged: ${P:-false}\n"


def create(world: World, actor: Actor, text: str = FILE) -> str:
    with world.db.session() as s:
        return workloads.create(
            s,
            actor,
            world.deployer.registry,
            world.settings,
            name="web",
            kind="compose",
            project=PROJECT,
            stage=STAGE,
            config={"compose": text},
        ).id


def set_env(world: World, actor: Actor, workload_id: str, **values: str) -> None:
    with world.db.session() as s:
        env_service.replace(
            s,
            actor,
            world.deployer.registry,
            world.settings,
            workload_id,
            {k: {"value": v, "secret": False} for k, v in values.items()},
        )


def row(world: World, workload_id: str) -> Workload:
    with world.db.session() as s:
        w = s.get(Workload, workload_id)
        assert w is not None
        s.expunge(w)
        return w


def env_of(world: World, workload_id: str) -> dict[str, str]:
    with world.db.session() as s:
        rows = s.scalars(select(EnvVar).where(EnvVar.workload_id == workload_id))
        return {r.key: r.value for r in rows}


def last_audit(world: World, action: str) -> AuditEntry:
    with world.db.session() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc())
        ).first()
        assert entry is not None
        s.expunge(entry)
        return entry


def test_an_env_change_that_turns_on_a_power_needs_an_admin(world: World) -> None:
    workload_id = create(world, OPERATOR)
    assert row(world, workload_id).host_powers == []

    with pytest.raises(Forbidden) as refused:
        set_env(world, OPERATOR, workload_id, P="true")
    assert refused.value.code == "needs_admin"
    assert refused.value.details[0]["service"] == "web"
    assert refused.value.details[0]["power"] == "privileged"
    assert env_of(world, workload_id) == {}
    assert row(world, workload_id).host_powers == []

    set_env(world, ADMIN, workload_id, P="true")
    held = row(world, workload_id).host_powers
    assert held == [{"power": "privileged", "where": "web", "detail": "privileged: true"}]
    details = last_audit(world, "workload.env.replace").details
    assert details["host_powers_granted"] == ["web: privileged (privileged: true)"]

    # What runs with it is the admin's: an operator may deploy it as it is, and save the
    # same env again, but not change it (LD_PRELOAD or PATH change the program).
    with pytest.raises(Forbidden) as refused:
        set_env(world, OPERATOR, workload_id, P="true", OTHER="1")
    assert refused.value.code == "needs_admin"
    set_env(world, OPERATOR, workload_id, P="true")
    assert "host_powers_granted" not in last_audit(world, "workload.env.replace").details
    with world.db.session() as s:
        deploys.deploy(s, OPERATOR, world.deployer.registry, world.settings, workload_id)


def test_a_deploy_that_resolves_to_more_than_it_holds_is_refused(world: World) -> None:
    workload_id = create(world, OPERATOR)
    # An env row written behind the services (by a Moorage from before the policy).
    with world.db.session() as s:
        s.add(EnvVar(workload_id=workload_id, key="P", value="true", secret=False))

    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        deploys.deploy(s, OPERATOR, world.deployer.registry, world.settings, workload_id)
    assert refused.value.code == "needs_admin"
    assert world.deployments(workload_id) == []

    # A deploy queued by a trigger runs without asking anyone: the worker refuses it.
    done = world.deploy(workload_id)
    assert done.status == "failed"
    assert done.error is not None and "privileged" in done.error
    assert world.engine.containers({}) == []
    assert world.engine.calls == []

    # An admin's deploy grants it (and says so in the audit row).
    with world.db.session() as s:
        queued = deploys.deploy(s, ADMIN, world.deployer.registry, world.settings, workload_id)
        assert queued.status == "queued"
    assert last_audit(world, "workload.deploy").details["host_powers_granted"] == [
        "web: privileged (privileged: true)"
    ]


def test_an_operator_may_not_widen_what_an_admin_granted(world: World) -> None:
    workload_id = create(world, ADMIN, FILE.replace("${P:-false}", "true"))
    details = last_audit(world, "workload.create").details
    assert details["host_powers"] == ["web: privileged (privileged: true)"]
    wider = FILE.replace("${P:-false}", "true") + "    pid: host\n"
    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        workloads.update(
            s,
            OPERATOR,
            world.deployer.registry,
            world.settings,
            workload_id,
            config={"compose": wider},
        )
    assert [d["power"] for d in refused.value.details] == ["pid"]
    # Narrower is fine, and then the power is gone for good.
    with world.db.session() as s:
        workloads.update(
            s,
            OPERATOR,
            world.deployer.registry,
            world.settings,
            workload_id,
            config={"compose": FILE},
        )
    assert row(world, workload_id).host_powers == []
    with world.db.session() as s, pytest.raises(Forbidden):
        workloads.update(
            s,
            OPERATOR,
            world.deployer.registry,
            world.settings,
            workload_id,
            config={"compose": FILE.replace("${P:-false}", "true")},
        )


def test_an_operator_may_not_change_what_runs_with_a_granted_power(world: World) -> None:
    """A grant is for the config the admin approved: an operator's other image or
    command keeping the same power is refused (the attacker pass kept an admin's host
    bind and ran their own command with it); the admin may; dropping the power is fine."""
    granted = FILE.replace("${P:-false}", "true")
    workload_id = create(world, ADMIN, granted)
    before = row(world, workload_id)
    other = granted.replace("moorage-test/httpd:1", "moorage-test/httpd:2")
    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        workloads.update(
            s, OPERATOR, world.deployer.registry, world.settings, workload_id,
            config={"compose": other},
        )  # fmt: skip
    assert refused.value.code == "needs_admin"
    assert [d["power"] for d in refused.value.details] == ["privileged"]
    assert "change the config" in refused.value.message
    assert row(world, workload_id).config == before.config
    with world.db.session() as s:
        workloads.update(
            s, ADMIN, world.deployer.registry, world.settings, workload_id,
            config={"compose": other},
        )  # fmt: skip
    assert row(world, workload_id).config["compose"] == other


def test_the_system_actor_is_an_admin(world: World) -> None:
    workload_id = create(world, SYSTEM, FILE.replace("${P:-false}", "true"))
    assert [p["power"] for p in row(world, workload_id).host_powers] == ["privileged"]
    with world.db.session() as s:
        assert s.scalars(select(Deployment)).all() == []


def test_a_command_of_an_operators_own_in_a_granted_workload_is_the_admins(world: World) -> None:
    """The helper's reproduction: a drill's ``exec`` check ran an operator's command in a
    sandbox of the workload as the admin approved it (a host file as a secret: the
    drill log showed the host's shadow). Hooks and drill commands on a workload holding
    powers are the admin's; Moorage's own check is anyone's."""
    workload_id = create(world, ADMIN, FILE.replace("${P:-false}", "true"))
    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        drills.request(
            s, OPERATOR, world.deployer.registry, workload_id, None,
            drills.parse_check({"exec": ["sh", "-c", "head -2 /run/secrets/s"]}),
        )  # fmt: skip
    assert refused.value.code == "needs_admin"
    for actor, check in ((OPERATOR, None), (ADMIN, {"exec": ["true"]})):
        with world.db.session() as s, pytest.raises(Conflict):  # no snapshot: past the role
            drills.request(
                s, actor, world.deployer.registry, workload_id, None, drills.parse_check(check)
            )


def test_a_renamed_stacks_old_name_cannot_take_over_its_containers(world: World) -> None:
    """The helper's reproduction: an operator renamed an admin's Compose workload (which
    keeps the project of its first deploy), made a new one under the old name, and its
    ``up`` replaced the admin's containers. A name whose project another workload of the
    stage still runs under is taken."""
    from moorage.sources.compose.deploy import project_name
    from moorage.store.states import DeploymentStatus

    first = create(world, ADMIN, FILE.replace("${P:-false}", "true"))
    name = row(world, first).name
    with world.db.session() as s:
        s.add(
            Deployment(
                id="dp_took_the_project", workload_id=first, status=DeploymentStatus.SUCCEEDED,
                reason="manual", artifact={"project": project_name(PROJECT, STAGE, name)},
            )
        )  # fmt: skip
        workloads.update(s, OPERATOR, world.deployer.registry, world.settings, first, name="old")
    for renamed_to in (name, None):
        with world.db.session() as s, pytest.raises(Conflict) as taken:
            if renamed_to is None:
                workloads.create(
                    s, OPERATOR, world.deployer.registry, world.settings, name=name,
                    kind="compose", project=PROJECT, stage=STAGE, config={"compose": FILE},
                )  # fmt: skip
            else:
                other = create(world, OPERATOR)
                workloads.update(
                    s, OPERATOR, world.deployer.registry, world.settings, other, name=renamed_to
                )
        assert taken.value.code == "duplicate" and "Compose project" in taken.value.message
    with world.db.session() as s:  # its own old name is its own to take back
        workloads.update(s, ADMIN, world.deployer.registry, world.settings, first, name=name)
