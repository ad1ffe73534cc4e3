"""Packing the replaced data: removed only once a durable archive holds every entry of it;
a tree holding what no archive can store (a socket) stays on disk, and the restore row
names where and why, across crashes and retries."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from moorage.snapshots.restore import journal, pack
from moorage.snapshots.restore.journal import Record
from moorage.store.tables import Snapshot
from tests.unit.snapshots.restore.conftest import Crash, Site


@pytest.fixture
def with_socket(site: Site) -> Iterator[Path]:
    """A unix socket in the live tree of v0 that the restore replaces."""
    path = site.world.live(site.id, "v0") / "app.sock"
    server = socket.socket(socket.AF_UNIX)
    # Bound by a relative name from its directory: a socket path holds at most 108 bytes,
    # and a parallel worker's temp dir is longer than that.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        server.bind(path.name)
    finally:
        os.chdir(here)
    yield path
    server.close()


def kept_trees(site: Site) -> dict[str, list[str]]:
    parent = site.world.live(site.id).parent
    return {
        p.name: sorted(os.listdir(p)) for p in parent.iterdir() if p.name.startswith(".moorage-")
    }


def test_a_tree_with_a_socket_is_kept_and_named(site: Site, with_socket: Path) -> None:
    restore_id = site.restore()
    row = site.world.restore_row(restore_id)
    assert row.status == "succeeded"
    assert site.trees() == site.old
    # Every replaced tree stays, whole, where the row says, and says why.
    kept = kept_trees(site)
    assert sorted(Path(p).name for p in row.kept_paths) == sorted(kept)
    assert all(Path(p).parent == site.world.live(site.id).parent for p in row.kept_paths)
    assert sorted(kept.values()) == sorted(
        [sorted([*site.new["v0"], "app.sock"]), sorted(site.new["v1"])]
    )
    assert row.kept_reason is not None and "app.sock" in row.kept_reason
    assert all(p in row.kept_reason for p in row.kept_paths)
    # What could be packed is a ready pre-restore snapshot all the same; the journal is done.
    with site.world.db.session() as s:
        snap = s.get(Snapshot, row.pre_restore_snapshot_id)
        assert snap is not None and snap.status == "ready" and snap.origin == "pre-restore"
    assert site.journals() == []


def test_packing_again_after_a_crash_keeps_the_kept_trees(site: Site, with_socket: Path) -> None:
    restore_id = site.restore()
    kept = kept_trees(site)
    # As if the process died after the row was written but before the journal went.
    record = Record.from_json(_journal_of(site, restore_id))
    journal.write(site.world.settings.journals_dir, record)
    pack.pack(site.world.tools, record)
    assert kept_trees(site) == kept
    assert site.world.restore_row(restore_id).kept_paths != []
    assert site.journals() == []


def _journal_of(site: Site, restore_id: str) -> dict[str, object]:
    """The committed record of a finished restore, rebuilt from its row and the disk."""
    row = site.world.restore_row(restore_id)
    parent = site.world.live(site.id).parent
    volumes = []
    for index, name in enumerate(row.volumes):
        staged = parent / f".moorage-restore-{restore_id}-{name}.new"
        aside = parent / f".moorage-restore-{restore_id}-{name}.old"
        holder = staged if staged.exists() else aside
        volumes.append(
            {
                "index": index,
                "name": name,
                "scope": "stage",
                "source": f"app/{name}",
                "live": str(parent / name),
                "staged": str(staged),
                "aside": str(aside),
                "old_inode": os.lstat(holder).st_ino,
                "new_inode": os.lstat(parent / name).st_ino,
            }
        )
    return {
        "restore": restore_id,
        "workload": site.id,
        "snapshot": site.snapshot,
        "state": "committed",
        "swap": row.swap,
        "containers": [],
        "volumes": volumes,
        "pre_restore": row.pre_restore_snapshot_id,
    }


def test_a_failed_pack_keeps_the_trees_says_why_and_the_next_try_removes_them(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(pack, "write_archive", full_disk)
        restore_id = site.restore()
    row = site.world.restore_row(restore_id)
    assert row.status == "succeeded" and row.pre_restore_snapshot_id is None
    assert len(row.kept_paths) == 2 and "No space left" in (row.kept_reason or "")
    assert sorted(kept_trees(site).values()) == sorted(sorted(t) for t in site.new.values())
    with site.world.db.session() as s:
        packs = s.scalars(select(Snapshot.status).where(Snapshot.origin == "pre-restore"))
        assert list(packs) == ["failed"]
    # The journal stayed: the next start packs again, and this time it works.
    [record] = journal.read_all(site.world.settings.journals_dir)
    assert isinstance(record, Record)
    pack.pack(site.world.tools, record)
    row = site.world.restore_row(restore_id)
    assert row.kept_paths == [] and row.kept_reason is None
    assert row.pre_restore_snapshot_id is not None
    assert kept_trees(site) == {} and site.journals() == []


def test_a_crash_before_the_trees_are_removed_removes_them_at_the_next_pack(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash_on_remove(path: Path, expected_inode: int) -> None:
        raise Crash("killed before the removal")

    with monkeypatch.context() as patch:
        patch.setattr(pack, "remove_if", crash_on_remove)
        with pytest.raises(Crash):
            site.restore()
    [record] = journal.read_all(site.world.settings.journals_dir)
    assert isinstance(record, Record) and record.pre_restore is not None
    assert len(kept_trees(site)) == 2
    pack.pack(site.world.tools, record)
    assert kept_trees(site) == {} and site.journals() == []
