"""Which snapshot a drill without one proves (``services.drills.latest_ready``, the API's
and a drill schedule's ``latest``): the newest ready one a person or a schedule took or
imported, not a pre-restore snapshot or a deploy checkpoint taken after it."""

from __future__ import annotations

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


def test_an_operator_may_not_drill_what_an_absolute_volume_held_when_captured(
    world: World,
) -> None:
    """A drill mounts the snapshot's data by volume name into what the workload deploys
    now: a volume captured while ``absolute`` (a host directory an admin chose), since
    moved to a stage directory, was read by an operator's ``exec`` check into the drill
    log (attacker pass H). Only an admin may read it, as only an admin downloads it."""
    import pytest

    from moorage.errors import Forbidden
    from moorage.security.roles import Actor

    olga = Actor(user_id="us_olga", username="olga", role="operator", via="token")
    ada = Actor(user_id="us_ada", username="ada", role="admin", via="token")
    wid = world.workload()
    sid = world.snapshot(wid)
    assert world.deploy(wid).status == "succeeded"
    with world.db.session() as s:
        row = s.get(Snapshot, sid)
        assert row is not None
        manifest = dict(row.manifest)
        manifest["volumes"] = [
            {**v, "scope": "absolute", "source": "/srv/secret"} for v in manifest["volumes"]
        ]
        row.manifest = manifest
    check = drills.parse_check({"exec": ["cat", "/v0/x"]})
    with world.db.session() as s, pytest.raises(Forbidden) as refused:
        drills.request(s, olga, world.deployer.registry, wid, sid, check)
    assert refused.value.code == "needs_admin"
    with world.db.session() as s:
        assert drills.request(s, ada, world.deployer.registry, wid, sid, check).id
