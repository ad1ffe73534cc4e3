"""The free-space pre-flight: allocated bytes (a sparse file takes its data, not its
length) and inodes (files, directories, symlinks, fifos), per filesystem, with format-1
manifests falling back to what they record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from moorage.errors import Conflict
from moorage.snapshots.restore import preflight
from moorage.snapshots.restore.preflight import BLOCK, INODE_MARGIN, VolumePlan

GIB = 1024**3
FORMAT_2 = {
    "index": 0,
    "name": "data",
    "files": 3,
    "dirs": 4,
    "symlinks": 2,
    "hardlinks": 5,
    "fifos": 1,
    "bytes": 512 * 1024**2,  # one sparse 512 MiB file ...
    "allocated_bytes": 8192,  # ... with 8 KiB on disk
}
FORMAT_1 = {"index": 1, "name": "old", "files": 10, "bytes": 1000}


def test_format_2_counts_allocated_bytes_and_every_inode() -> None:
    size, inodes = preflight.entry_needs(FORMAT_2)
    assert size == 8192 + BLOCK * (4 + 2) + BLOCK
    # Hard links share their file's inode; the root directory takes one more.
    assert inodes == 3 + 4 + 2 + 1 + 1 + INODE_MARGIN


def test_format_1_falls_back_to_bytes_and_files() -> None:
    size, inodes = preflight.entry_needs(FORMAT_1)
    assert size == 1000 + BLOCK * 10 + BLOCK
    assert inodes == 10 + 1 + INODE_MARGIN


def plan(tmp: Path, name: str, index: int) -> VolumePlan:
    live = tmp / name
    return VolumePlan(index, name, "stage", name, live, tmp / f".{name}.new", tmp / f".{name}.old")


def test_needs_are_summed_per_filesystem_with_the_unrestored_volumes_in_scratch(
    tmp_path: Path,
) -> None:
    targets, scratch = tmp_path / "targets", Path("/dev/shm")
    targets.mkdir()
    if os.stat(targets).st_dev == os.stat(scratch).st_dev:
        pytest.skip("/dev/shm is not a filesystem of its own here")
    third = {**FORMAT_1, "index": 2, "name": "skipped"}
    found = preflight.needs(
        [plan(targets, "data", 0), plan(targets, "old", 1)], [FORMAT_2, FORMAT_1, third], scratch
    )
    by_folder = {need.folder: (need.bytes, need.inodes) for need in found.values()}
    two = [preflight.entry_needs(FORMAT_2), preflight.entry_needs(FORMAT_1)]
    assert by_folder == {
        targets: (sum(s for s, _ in two), sum(i for _, i in two)),
        scratch: preflight.entry_needs(third),
    }


class FakeStatvfs:
    def __init__(self, free: int, inodes: int, total_inodes: int = 1_000_000) -> None:
        self.f_frsize, self.f_bavail = 4096, free // 4096
        self.f_favail, self.f_files = inodes, total_inodes


@pytest.mark.parametrize(
    ("free", "inodes", "total", "refused"),
    [
        (100 * 1024**2, 10_000, 1_000_000, None),  # the 512 MiB sparse file fits in 100 MiB
        (16 * 1024, 10_000, 1_000_000, "bytes"),  # less than the allocated bytes need
        (GIB, 50, 1_000_000, "inodes"),
        (GIB, 0, 0, None),  # no inode count (btrfs): judged by bytes alone
    ],
)
def test_check_space_refuses_too_few_bytes_or_inodes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    free: int,
    inodes: int,
    total: int,
    refused: str | None,
) -> None:
    monkeypatch.setattr(preflight.os, "statvfs", lambda _path: FakeStatvfs(free, inodes, total))
    volumes: list[dict[str, Any]] = [FORMAT_2]
    if refused is None:
        preflight.check_space([plan(tmp_path, "data", 0)], volumes, tmp_path)
        return
    with pytest.raises(Conflict) as error:
        preflight.check_space([plan(tmp_path, "data", 0)], volumes, tmp_path)
    assert error.value.code == "no_space"
    assert refused in error.value.message
