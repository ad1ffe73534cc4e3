"""What a download may read (services.snapshots.ready_archive): only the archive of a
``ready`` snapshot whose file is there; anything else is 404 ``not_ready``. Retention
(``prune``) counts captures and deploy checkpoints apart."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from moorage.errors import Forbidden, InvalidInput, NotFound
from moorage.plugins.spec import HostPower
from moorage.security.roles import SYSTEM, Actor
from moorage.services import snapshots, workloads
from moorage.store.states import SnapshotOrigin
from moorage.store.tables import Snapshot, Workload
from tests.fakes.world import PROJECT, STAGE, World


def test_a_ready_snapshot_gives_its_archive_and_digest(world: World) -> None:
    wid = world.workload()
    sid = world.snapshot(wid)
    with world.db.session() as s:
        path, sha256 = snapshots.ready_archive(s, world.settings, SYSTEM, wid, sid)
    assert path == snapshots.archive_path_for(world.settings, wid, sid)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_archive_to_read_is_not_ready(world: World) -> None:
    wid = world.workload()
    gone = world.snapshot(wid)
    snapshots.archive_path_for(world.settings, wid, gone).unlink()
    with world.db.session() as s:
        capturing = snapshots.request_capture(
            s, SYSTEM, world.deployer.registry, wid, volumes=None, mode="stop"
        ).id
    for sid in (gone, capturing):
        with world.db.session() as s, pytest.raises(NotFound) as refused:
            snapshots.ready_archive(s, world.settings, SYSTEM, wid, sid)
        assert refused.value.code == "not_ready"
    with world.db.session() as s, pytest.raises(NotFound) as refused:
        snapshots.ready_archive(s, world.settings, SYSTEM, wid, "sn_unknown")
    assert refused.value.code == "not_found"


def test_checkpoints_never_push_out_a_capture(world: World) -> None:
    """keep_last counts captures and deploy checkpoints apart: any number of deploys
    with checkpoints leaves the person's and the schedule's captures alone."""
    wid = world.workload()
    manual = [world.snapshot(wid) for _ in range(2)]
    checkpoints = [world.snapshot(wid) for _ in range(3)]
    with world.db.session() as s:
        for sid in checkpoints:
            row = s.get(Snapshot, sid)
            assert row is not None
            row.origin = SnapshotOrigin.CHECKPOINT
        workload = s.get(Workload, wid)
        assert workload is not None
        workload.keep_last = 2
    with world.db.session() as s:
        removed = snapshots.prune(s, world.settings, wid)
    assert removed == [checkpoints[0]]  # the oldest checkpoint only
    with world.db.session() as s:
        left = {sn.id: sn.origin for sn in s.scalars(select(Snapshot)) if sn.workload_id == wid}
    assert set(left) == {*manual, *checkpoints[1:]}
    assert not snapshots.archive_path_for(world.settings, wid, checkpoints[0]).exists()
    assert all(snapshots.archive_path_for(world.settings, wid, m).exists() for m in manual)


OPERATOR = Actor(user_id="us_op", username="op", role="operator", via="token")


def _refused_to(actor: Actor, world: World, wid: str, sid: str) -> list[str]:
    """The powers named when ``actor`` may not download, or [] when they may."""
    with world.db.session() as s:
        try:
            snapshots.ready_archive(s, world.settings, actor, wid, sid)
        except Forbidden as refused:
            assert refused.code == "needs_admin"
            return [d["power"] for d in refused.details or []]
    return []


@pytest.mark.parametrize("reason", ["absolute_when_captured", "holds_powers", "none"])
def test_only_an_admin_downloads_what_only_an_admin_may_read(world: World, reason: str) -> None:
    """An archive of a host directory (a volume ``absolute`` when captured, whatever the
    workload holds now) or of a workload that holds host powers is the admin's to read:
    an operator cannot change what runs there, so nothing else would show them its data."""
    wid = world.workload()
    sid = world.snapshot(wid)
    with world.db.session() as s:
        snap = s.get(Snapshot, sid)
        workload = s.get(Workload, wid)
        assert snap is not None and workload is not None
        if reason == "absolute_when_captured":
            volumes = [{"name": "host", "scope": "absolute", "source": "/srv/host"}]
            snap.manifest = {**snap.manifest, "volumes": volumes}
        elif reason == "holds_powers":
            workload.host_powers = [HostPower("cap_add", "web", "SYS_ADMIN").as_dict()]
    expected = {"absolute_when_captured": ["absolute_volume"], "holds_powers": ["cap_add"]}
    assert _refused_to(OPERATOR, world, wid, sid) == expected.get(reason, [])
    assert _refused_to(SYSTEM, world, wid, sid) == []


STACK = """\
services:
  db:
    image: postgres:16
    volumes:
      - dbdata:/var/lib/postgresql/data
  web:
    image: nginx:1.27
    volumes:
      - type: volume
        source: cache
        target: /var/cache/nginx
volumes:
  dbdata: {}
  cache: {}
"""


def test_a_stack_with_only_named_volumes_is_told_how_to_capture_one(world: World) -> None:
    """A compose workload whose data sits in Compose named volumes has no volume Moorage
    captures: 422 ``no_volumes`` says named volumes are not captured, names them with
    their services, and gives the ``apps volumes set`` that makes one a Moorage volume;
    no snapshot row is written."""
    with world.db.session() as s:
        stack = workloads.create(
            s,
            SYSTEM,
            world.deployer.registry,
            world.settings,
            name="stack",
            kind="compose",
            project=PROJECT,
            stage=STAGE,
            config={"compose": STACK},
        ).id
    with world.db.session() as s, pytest.raises(InvalidInput) as refused:
        snapshots.request_capture(
            s, SYSTEM, world.deployer.registry, stack, volumes=None, mode="stop"
        )
    assert refused.value.code == "no_volumes"
    message = refused.value.message
    assert "Compose named volumes" in message and "not captured" in message
    assert "cache (web)" in message and "dbdata (db)" in message
    assert (
        f"moorage apps volumes set {PROJECT}/{STAGE}/stack "
        "cache:stage:stack/cache:/TARGET:service=web"
    ) in message
    with world.db.session() as s:
        assert list(s.scalars(select(Snapshot).where(Snapshot.workload_id == stack))) == []


def test_a_workload_without_any_volume_keeps_the_plain_message(world: World) -> None:
    wid = world.workload(volumes=0)
    with world.db.session() as s, pytest.raises(InvalidInput) as refused:
        snapshots.request_capture(
            s, SYSTEM, world.deployer.registry, wid, volumes=None, mode="stop"
        )
    assert (refused.value.code, refused.value.message) == (
        "no_volumes",
        "the workload has no volumes to snapshot",
    )
