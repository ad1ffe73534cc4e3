"""Which snapshot a drill without one proves (``services.drills.latest_ready``, the API's
and a drill schedule's ``latest``): the newest ready one a person or a schedule took or
imported, not a pre-restore snapshot or a deploy checkpoint taken after it."""

from __future__ import annotations

import pytest

from moorage.errors import Forbidden
from moorage.plugins.spec import HostPower
from moorage.security.roles import Actor
from moorage.services import drills
from moorage.store.states import SnapshotOrigin
from moorage.store.tables import Snapshot
from tests.fakes.world import World


def test_latest_ready_passes_over_pre_restore_and_checkpoint_snapshots(world: World) -> None:
    wid = world.workload()
    taken = world.snapshot(wid)
    automatic = {world.snapshot(wid): SnapshotOrigin.PRE_RESTORE}
    automatic[world.snapshot(wid)] = SnapshotOrigin.CHECKPOINT
    with world.db.session() as s:
        for sid, origin in automatic.items():
            row = s.get(Snapshot, sid)
            assert row is not None
            row.origin = origin
    with world.db.session() as s:
        latest = drills.latest_ready(s, wid)
        assert latest is not None and latest.id == taken


OLGA = Actor(user_id="us_olga", username="olga", role="operator", via="token")
ADA = Actor(user_id="us_ada", username="ada", role="admin", via="token")


def _absolute_snapshot(world: World) -> tuple[str, str]:
    """A deployed workload and a snapshot of it whose volumes were ``absolute`` (host
    directory ``/srv/secret``) when captured."""
    wid = world.workload()
    sid = world.snapshot(wid)
    assert world.deploy(wid).status == "succeeded"
    with world.db.session() as s:
        row = s.get(Snapshot, sid)
        assert row is not None
        volumes = [
            {**v, "scope": "absolute", "source": "/srv/secret"} for v in row.manifest["volumes"]
        ]
        row.manifest = {**row.manifest, "volumes": volumes}
    return wid, sid


def test_an_operator_may_not_drill_what_an_absolute_volume_held_when_captured(
    world: World,
) -> None:
    """A drill mounts the snapshot's data by volume name into what the workload deploys
    now: a volume captured while ``absolute`` (a host directory an admin chose), since
    moved to a stage directory, was read by an operator's ``exec`` check into the drill
    log (attacker pass H). Only an admin may read it, as only an admin downloads it."""
    wid, sid = _absolute_snapshot(world)
    check = drills.parse_check({"exec": ["cat", "/v0/x"]})
    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        drills.request(s, OLGA, world.deployer.registry, wid, sid, check)
    assert refused.value.code == "needs_admin"
    with world.db.session() as s:
        assert drills.request(s, ADA, world.deployer.registry, wid, sid, check).id


def test_an_operator_reads_no_absolute_data_through_an_http_check_of_a_guarded_workload(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workload still guarded (it holds another host power) may be drilled by an
    operator, its ``exec`` checks the admin's; but an ``http`` check's answer goes into
    the drill log too, up to 4,000 characters, and the path is the operator's choice: of
    a snapshot that held an ``absolute`` volume, the app served that host directory's
    files to them (attacker pass I). The workload's own health check stays theirs."""
    wid, sid = _absolute_snapshot(world)
    guard = [HostPower("privileged", "web", "runs privileged")]
    monkeypatch.setattr(drills.powers, "guarded", lambda _s, _w: list(guard))
    http = drills.parse_check({"http": "/files/shadow", "port": 8080})
    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        drills.request(s, OLGA, world.deployer.registry, wid, sid, http)
    assert refused.value.code == "needs_admin"
    assert "/srv/secret" in refused.value.message
    with world.db.session() as s:
        assert drills.request(s, OLGA, world.deployer.registry, wid, sid, drills.parse_check({}))
        assert drills.request(s, ADA, world.deployer.registry, wid, sid, http).id
