"""Recovery without Docker: a restore cut off at every fault point, in both swap modes,
settles all old or all new at the next start, decided per volume by the inode at the live
path; it brings the workload up with the artifact that ran; it is idempotent (cut it off
too, run it again); it removes the journal last; and it leaves alone what it cannot read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from moorage.snapshots.restore import RestoreEngine, journal, recovery
from moorage.snapshots.restore.journal import Record
from moorage.snapshots.restore.swap import converge
from tests.fakes.world import World, make_world
from tests.unit.snapshots.restore.conftest import VOLUMES, Crash, CrashAt, Site, fill

# (fault point, the trees recovery must settle on, the restore's status)
FAULTS = [
    ("restore.after_journal", "new", "rolled_back"),
    ("restore.after_quiesce", "new", "rolled_back"),
    ("restore.after_swap.0", "new", "rolled_back"),
    ("restore.after_swap.1", "new", "rolled_back"),
    ("restore.after_swaps", "new", "rolled_back"),
    ("restore.after_redeploy", "old", "succeeded"),
]


def crash(site: Site, point: str) -> str:
    """Run a restore of the site's snapshot until it dies at ``point``; its id."""
    site.world.fault = CrashAt(point)
    restorer = site.world.restorer()
    restore_id = site.world.request_restore(restorer, site.id, site.snapshot)
    with pytest.raises(Crash):
        restorer.run(restore_id)
    site.world.fault = CrashAt()
    return restore_id


def restart(site: Site) -> RestoreEngine:
    """What the lifespan does at start-up: recover before serving, then resume (here, in
    this thread)."""
    restorer = site.world.restorer()
    settled = recovery.recover(site.world.tools)
    recovery.follow_up(site.world.tools, settled)
    return restorer


def assert_up_with_the_deployed_artifact(site: Site, restore_id: str) -> None:
    world = site.world
    running = [c for c in world.engine.containers({}) if c.running]
    assert [c.labels["moorage.deployment"] for c in running] == [site.deployed.id]
    newest = world.deployments(site.id)[0]
    assert newest.reason == f"restore:{restore_id}"
    assert newest.status == "succeeded", newest.error
    assert newest.artifact == site.deployed.artifact
    assert newest.inputs == site.deployed.inputs


@pytest.fixture(params=["exchange", "rename"])
def swap_world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    return make_world(tmp_path, restore_swap=request.param)


@pytest.mark.parametrize(("point", "settles_on", "status"), FAULTS, ids=[f[0] for f in FAULTS])
def test_cut_off_anywhere_recovers_all_old_or_all_new(
    site: Site, point: str, settles_on: str, status: str
) -> None:
    restore_id = crash(site, point)
    assert site.journals() == [f"{restore_id}.json"]
    settled = recovery.recover(site.world.tools)
    # Before anything is served: the volumes and the row are decided.
    assert site.trees() == (site.old if settles_on == "old" else site.new)
    assert site.world.restore_row(restore_id).status == status
    recovery.follow_up(site.world.tools, settled)
    assert site.journals() == [] and site.leftovers() == []
    assert_up_with_the_deployed_artifact(site, restore_id)
    row = site.world.restore_row(restore_id)
    assert (row.pre_restore_snapshot_id is not None) is (status == "succeeded")
    assert row.kept_paths == []


@pytest.mark.parametrize("point", ["restore.after_swap.0", "restore.after_redeploy"])
def test_both_swap_modes_recover(swap_world: World, point: str) -> None:
    workload_id = swap_world.workload(volumes=2)
    swap_world.deploy(workload_id)
    for v in VOLUMES:
        fill(swap_world.live(workload_id, v), f"old-{v}")
    snapshot = swap_world.snapshot(workload_id)
    for v in VOLUMES:
        fill(swap_world.live(workload_id, v), f"new-{v}")
    site = Site(swap_world, workload_id, snapshot, swap_world.deployments(workload_id)[0], {}, {})
    site.old = {v: {"index.html": f"old-{v}\n".encode()} for v in VOLUMES}
    restore_id = crash(site, point)
    assert swap_world.restore_row(restore_id).swap == swap_world.settings.restore_swap
    restart(site)
    want = "old" if point == "restore.after_redeploy" else "new"
    for v in VOLUMES:
        assert (swap_world.live(workload_id, v) / "index.html").read_text() == f"{want}-{v}\n"
    assert site.journals() == [] and site.leftovers() == []


@pytest.mark.parametrize("point", ["restore.after_swaps", "restore.after_redeploy"])
def test_recovery_cut_off_itself_recovers_on_the_next_start(site: Site, point: str) -> None:
    restore_id = crash(site, point)
    site.world.fault = CrashAt("restore.recover.after_volume.1")
    with pytest.raises(Crash):
        recovery.recover(site.world.tools)
    site.world.fault = CrashAt()
    assert site.journals() == [f"{restore_id}.json"]  # nothing finished: nothing removed
    restart(site)
    restart(site)  # and once more: nothing left to do, nothing changes
    assert site.trees() == (site.old if point == "restore.after_redeploy" else site.new)
    assert site.journals() == [] and site.leftovers() == []
    assert_up_with_the_deployed_artifact(site, restore_id)


def test_the_journal_is_removed_last(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    rolled_back = crash(site, "restore.after_swaps")
    seen: list[tuple[str, str, bool, str]] = []
    real_remove = journal.remove

    def remove(journals_dir: Path, restore_id: str) -> None:
        row = site.world.restore_row(restore_id)
        newest = site.world.deployments(site.id)[0]
        seen.append((restore_id, row.status, site.leftovers() == [], newest.reason))
        real_remove(journals_dir, restore_id)

    monkeypatch.setattr(journal, "remove", remove)
    restart(site)
    # Volumes, row and the redeploy are all done when the journal goes.
    assert seen == [(rolled_back, "rolled_back", True, f"restore:{rolled_back}")]
    assert site.trees() == site.new


def test_a_failed_bring_up_keeps_the_journal_for_the_next_start(site: Site) -> None:
    restore_id = crash(site, "restore.after_swaps")
    settled = recovery.recover(site.world.tools)

    def die(workload_id: str, reason: str) -> str | None:
        raise Crash("killed while redeploying")

    with pytest.raises(Crash):
        recovery.follow_up(dataclasses.replace(site.world.tools, redeploy=die), settled)
    assert site.journals() == [f"{restore_id}.json"]
    restart(site)
    assert site.journals() == []
    assert_up_with_the_deployed_artifact(site, restore_id)


def test_each_volume_is_decided_by_the_inode_at_its_live_path(site: Site) -> None:
    """A committed journal whose first volume is already swapped and whose second is not
    (as a crash between two swaps would leave it) rolls both forward, never re-swapping
    the first."""
    restore_id = crash(site, "restore.after_redeploy")
    [record] = journal.read_all(site.world.settings.journals_dir)
    assert isinstance(record, Record)
    second = record.volumes[1]
    converge(second.live, second.old_inode, second.new_inode, second.spares, use_exchange=False)
    assert (site.world.live(site.id, "v0") / "index.html").read_text() == "old-v0\n"
    assert (site.world.live(site.id, "v1") / "index.html").read_text() == "new-v1\n"
    restart(site)
    assert site.trees() == site.old
    assert site.world.restore_row(restore_id).status == "succeeded"
    assert site.journals() == [] and site.leftovers() == []


def test_a_directory_recovery_does_not_know_is_left_alone(site: Site) -> None:
    restore_id = crash(site, "restore.after_swap.0")
    live = site.world.live(site.id, "v0")
    # Someone moved the live directory away and put their own in its place.
    held = {p.name: sorted(q.name for q in p.iterdir()) for p in live.parent.iterdir()}
    live.rename(live.parent / "moved")
    fill(live, "someone-else")
    restart(site)
    row = site.world.restore_row(restore_id)
    assert row.status == "running" and "recovery failed" in (row.error or "")
    assert (live / "index.html").read_text() == "someone-else\n"
    assert site.journals() == [f"{restore_id}.json"]
    held.pop("v0")
    assert {
        p.name: sorted(q.name for q in p.iterdir())
        for p in live.parent.iterdir()
        if p.name not in ("v0", "moved")
    } == held


def test_an_unreadable_journal_is_left_alone_and_blocks_only_its_workload(
    site: Site, world: World
) -> None:
    restore_id = crash(site, "restore.after_swap.0")
    path = journal.path_for(world.settings.journals_dir, restore_id)
    path.write_bytes(path.read_bytes()[:40])
    before = {p.name for p in world.live(site.id).parent.iterdir()}
    restart(site)
    assert path.read_bytes()  # kept, as found
    assert {p.name for p in world.live(site.id).parent.iterdir()} == before
    row = world.restore_row(restore_id)
    assert row.status == "running" and "cannot be read" in (row.error or "")
    # A running row blocks another restore of this workload.
    from moorage.errors import Conflict

    with pytest.raises(Conflict) as refused:
        world.request_restore(world.restorer(), site.id, site.snapshot)
    assert refused.value.code == "restore_running"


def test_a_restore_cut_off_before_its_journal_touched_nothing(site: Site) -> None:
    restore_id = crash(site, "restore.after_extract")
    assert site.leftovers() != []  # staged trees beside the targets
    restart(site)
    row = site.world.restore_row(restore_id)
    assert row.status == "failed" and "before any volume was touched" in (row.error or "")
    assert site.trees() == site.new
    assert site.leftovers() == [] and site.journals() == []
