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
