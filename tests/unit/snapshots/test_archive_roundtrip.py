"""Writer and reader together: what is captured comes back identical, and the counts are exact."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from moorage.errors import ArchiveInvalid
from moorage.snapshots.archive import (
    Limits,
    VolumeSource,
    WriteResult,
    durable,
    read_archive,
    write_archive,
)
from tests.unit.snapshots.trees import COUNTED, tree_counts, tree_state

MiB = 1 << 20
LIMITS = Limits(max_bytes=1 << 30)
WORKLOAD = {"id": "wl-1", "name": "shop", "kind": "image"}
ODD_NAMES = [
    "with space",
    "ünïcødé ✓ 名前",
    "-leading-dash",
    "\uff0e\uff0e",  # fullwidth dots: a legal name, not a traversal
    "...",
    ".hidden",
    "quote'\"and#%&*?[]{}",
]


def _make_tree(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first volume: every kind of entry a volume can hold, plus a socket we must skip."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (root / "a" / "top.txt").write_text("top\n")
    (root / "empty-dir").mkdir()
    (root / "empty-dir" / "empty-inside").mkdir()
    (root / "empty-file").write_bytes(b"")
    for i, name in enumerate(ODD_NAMES):
        (root / name).write_text(f"odd {i}\n")
    (root / "odd dir ✓").mkdir()
    (root / "odd dir ✓" / "-x").write_bytes(b"x")
    with open(root / "big.bin", "wb") as f:  # 5 MiB, mostly holes, a few marks
        f.truncate(5 * MiB + 123)
        for offset in (0, MiB - 1, 3 * MiB + 7, 5 * MiB + 100):
            f.seek(offset)
            f.write(b"mark-%d" % offset)
    (root / "private").write_text("secret\n")
    os.chmod(root / "private", 0o600)
    (root / "script.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "script.sh", 0o755)
    os.chmod(root / "a" / "b", 0o750)
    (root / "locked").mkdir()
    (root / "locked" / "inside").write_text("in a read-only dir\n")
    os.chmod(root / "locked", 0o555)
    os.utime(root / "private", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.utime(root / "empty-file", ns=(0, 0))
    # Kept: symlinks (never followed), a fifo, a hard-link group. Skipped: a socket.
    (root / "link").symlink_to("/etc/passwd")
    (root / "rel-link").symlink_to("../../outside")
    (root / "dangling").symlink_to("nowhere")
    os.mkfifo(root / "fifo")
    os.link(root / "a" / "top.txt", root / "top-again")
    monkeypatch.chdir(root)  # a relative bind keeps the socket path under the 108-byte limit
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("sock")
    server.close()
    return ["volume data: 'sock': skipped, it is a socket, which no archive keeps"]


def _snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry at lstat level, sockets left out (no archive keeps them)."""
    return {rel: entry for rel, entry in tree_state(root).items() if entry[0] != "socket"}


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def volumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[VolumeSource], list[str]]:
    data = tmp_path / "src" / "data"
    logs = tmp_path / "src" / "logs"
    blank = tmp_path / "src" / "blank"
    for path in (data, logs, blank):
        path.mkdir(parents=True)
    expected_warnings = _make_tree(data, monkeypatch)
    (logs / "2024").mkdir()
    (logs / "2024" / "app.log").write_bytes(os.urandom(200_000))
    (logs / "current.log").write_text("hello\n" * 1000)
    os.chmod(blank, 0o700)
    sources = [
        VolumeSource(index=0, name="data", scope="stage", source="data", path=data),
        VolumeSource(index=1, name="logs", scope="project", source="logs", path=logs),
        VolumeSource(index=2, name="blank", scope="absolute", source=str(blank), path=blank),
    ]
    # Directory mtimes last: creating entries above changed them.
    os.utime(data / "a" / "b" / "c", ns=(1_500_000_000_000_000_001, 1_500_000_000_000_000_001))
    return sources, expected_warnings


def _write(tmp_path: Path, sources: list[VolumeSource], **kw: Any) -> WriteResult:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return write_archive(out / "snap.tar.zst", WORKLOAD, sources, **kw)


def test_round_trip_restores_an_identical_tree(
    tmp_path: Path, volumes: tuple[list[VolumeSource], list[str]]
) -> None:
    sources, expected_warnings = volumes
    before = {v.index: _snapshot(v.path) for v in sources}
    seen: list[int] = []

    result = _write(tmp_path, sources, progress=seen.append)

    # The archive: in place, complete, described exactly, no leftovers beside it.
    assert result.path == tmp_path / "out" / "snap.tar.zst"
    assert os.listdir(tmp_path / "out") == ["snap.tar.zst"]
    raw = result.path.read_bytes()
    assert result.size == len(raw)
    assert result.sha256 == hashlib.sha256(raw).hexdigest()
    assert sorted(result.warnings) == sorted(expected_warnings)
    manifest = result.manifest
    assert manifest["format"] == 2
    assert manifest["workload"] == WORKLOAD
    assert manifest["created_at"].endswith("Z")
    assert [(v["index"], v["name"], v["scope"], v["source"]) for v in manifest["volumes"]] == [
        (s.index, s.name, s.scope, s.source) for s in sources
    ]
    for entry, source in zip(manifest["volumes"], sources, strict=True):
        assert {k: entry[k] for k in COUNTED} == tree_counts(source.path)
    assert manifest["volumes"][0]["symlinks"] == 3
    assert manifest["volumes"][0]["hardlinks"] == 1
    assert manifest["volumes"][0]["fifos"] == 1
    assert not result.complete
    assert result.skipped == ["volume data: 'sock': it is a socket, which no archive keeps"]
    total = sum(v["bytes"] for v in manifest["volumes"])
    assert seen == sorted(seen) and seen[-1] == total

    # Verify-only reproduces the manifest and writes nothing at all.
    listing = _listing(tmp_path)
    with open(result.path, "rb") as f:
        assert read_archive(f, limits=LIMITS) == manifest
    assert _listing(tmp_path) == listing

    # Staged: every volume comes back identical (content, modes, mtimes); skipped
    # entries stay skipped.
    staging = {s.index: tmp_path / "restore" / s.name for s in sources}
    for path in staging.values():
        path.mkdir(parents=True)
    progress: list[int] = []
    with open(result.path, "rb") as f:
        assert read_archive(f, limits=LIMITS, staging=staging, progress=progress.append) == manifest
    assert progress[-1] == total
    for source in sources:
        assert _snapshot(staging[source.index]) == before[source.index]
    assert os.readlink(staging[0] / "link") == "/etc/passwd"
    assert os.stat(staging[0] / "top-again").st_ino == os.stat(staging[0] / "a" / "top.txt").st_ino
    assert sorted(os.listdir(tmp_path / "restore")) == ["blank", "data", "logs"]


def test_archive_is_a_plain_pax_tar_in_one_zstd_frame(
    tmp_path: Path, volumes: tuple[list[VolumeSource], list[str]]
) -> None:
    sources, _ = volumes
    result = _write(tmp_path, sources, level=1, threads=-1)
    with open(result.path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        members = tf.getmembers()
    assert members[0].name == "manifest.json"
    assert members[1].name == "volumes/0" and members[1].isdir()
    assert [m.name for m in members if m.name.count("/") == 1] == [
        "volumes/0",
        "volumes/1",
        "volumes/2",
    ]
    assert all(m.name.startswith("volumes/") for m in members[1:])
    assert {m.type for m in members} == {b"0", b"1", b"2", b"5", b"6"}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    names = {m.name for m in members}
    assert "volumes/0/a/b/c/deep.txt" in names and "volumes/0/empty-dir/empty-inside" in names
    assert {"volumes/0/link", "volumes/0/fifo"} <= names
    assert "volumes/0/sock" not in names


def test_files_that_change_between_passes_keep_the_manifest_true(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    (root / "a-first").write_bytes(b"x" * (2 * MiB))  # streams first, triggers progress
    (root / "grows").write_bytes(b"g" * 1000)
    (root / "shrinks").write_bytes(b"s" * 1000)
    (root / "vanishes").write_bytes(b"v" * 10)
    changed = False

    def meddle(_done: int) -> None:
        nonlocal changed
        if not changed:
            changed = True
            (root / "grows").write_bytes(b"G" * 5000)
            (root / "shrinks").write_bytes(b"S" * 10)
            (root / "vanishes").unlink()
            (root / "appears").write_bytes(b"new")

    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source], progress=meddle)

    assert changed
    assert result.manifest["volumes"][0]["files"] == 4
    assert result.manifest["volumes"][0]["bytes"] == 2 * MiB + 2010
    assert any("'grows' changed size" in w for w in result.warnings)
    assert any("'shrinks' changed size" in w and "zeros" in w for w in result.warnings)
    assert any("'vanishes' vanished" in w for w in result.warnings)
    staged = tmp_path / "staged"
    staged.mkdir()
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS, staging={0: staged})
    assert (staged / "grows").read_bytes() == b"G" * 1000
    assert (staged / "shrinks").read_bytes() == b"S" * 10 + bytes(990)
    assert (staged / "vanishes").read_bytes() == bytes(10)
    assert not (staged / "appears").exists()


def test_names_are_raw_bytes_and_only_depth_over_the_cap_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    odd = [b"new\nline", b"back\\slash", b"latin1-\xe9", b"esc\x1b[2J", b"x" * 255, b"\xff\xfe"]
    for name in odd:
        (root / os.fsdecode(name)).write_bytes(name)
    deep = root.joinpath(*["d"] * 66)
    deep.mkdir(parents=True)
    (root / "fine").write_text("ok")
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)

    result = _write(tmp_path, [source])

    assert len(result.warnings) == 1, result.warnings
    assert "deeper than 64 levels" in result.warnings[0]
    assert len(result.skipped) == 1 and not result.complete
    staged = tmp_path / "staged"
    staged.mkdir()
    with open(result.path, "rb") as f:
        manifest = read_archive(f, limits=LIMITS, staging={0: staged})
    assert manifest["volumes"][0]["files"] == len(odd) + 1
    for name in odd:
        assert (staged / os.fsdecode(name)).read_bytes() == name
    assert (staged / "fine").read_text() == "ok"
    assert len(list(staged.rglob("d"))) == 64


def test_a_failed_capture_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "snap.tar.zst.partial").write_bytes(b"stale from a crash")
    good = tmp_path / "good"
    good.mkdir()
    (good / "f").write_text("x")
    sources = [
        VolumeSource(index=0, name="good", scope="stage", source="g", path=good),
        VolumeSource(index=1, name="gone", scope="stage", source="m", path=tmp_path / "missing"),
    ]
    with pytest.raises(FileNotFoundError):
        write_archive(out / "snap.tar.zst", WORKLOAD, sources)
    assert os.listdir(out) == []

    def crash(_done: int) -> None:
        raise RuntimeError("killed mid-capture")

    (good / "big").write_bytes(b"b" * (3 * MiB))
    with pytest.raises(RuntimeError):
        write_archive(out / "snap.tar.zst", WORKLOAD, sources[:1], progress=crash)
    assert os.listdir(out) == []


def test_staging_must_match_the_manifest(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source])
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    with open(result.path, "rb") as f, pytest.raises(ArchiveInvalid, match="staging"):
        read_archive(f, limits=LIMITS, staging={0: one, 1: two})
    (one / "stray").write_text("x")
    with open(result.path, "rb") as f, pytest.raises(ValueError, match="not empty"):
        read_archive(f, limits=LIMITS, staging={0: one})


def test_reader_caps_apply_to_honest_archives_too(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    (root / "f").write_bytes(b"x" * 5000)
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source])
    with open(result.path, "rb") as f, pytest.raises(ArchiveInvalid, match="over the cap"):
        read_archive(f, limits=Limits(max_bytes=4999))
    with open(result.path, "rb") as f:
        assert read_archive(f, limits=Limits(max_bytes=5000))["volumes"][0]["bytes"] == 5000


def _two_volume_archive(tmp_path: Path) -> tuple[WriteResult, dict[int, Path]]:
    sources = []
    for index in range(2):
        root = tmp_path / f"vol{index}"
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "f").write_text(f"volume {index}\n")
        sources.append(
            VolumeSource(index=index, name=f"v{index}", scope="stage", source="s", path=root)
        )
    result = _write(tmp_path, sources)
    staging = {index: tmp_path / "staged" / str(index) for index in range(2)}
    for path in staging.values():
        path.mkdir(parents=True)
    return result, staging


def test_staged_data_is_synced_once_per_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, staging = _two_volume_archive(tmp_path)
    calls: list[int] = []
    real = durable.syncfs

    def spy(fd: int) -> bool:
        calls.append(fd)
        return real(fd)

    monkeypatch.setattr(durable, "syncfs", spy)
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS, staging=staging)
    assert len(calls) == 1  # both staging directories live on one filesystem
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS)
    assert len(calls) == 1  # verify-only writes nothing, so syncs nothing


@pytest.mark.parametrize("missing", ["no-syncfs-symbol", "syncfs-unsupported"])
def test_staging_stays_durable_without_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    result, staging = _two_volume_archive(tmp_path)
    fsynced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsynced.append(fd)
        real_fsync(fd)

    if missing == "no-syncfs-symbol":
        monkeypatch.setattr(durable, "_libc", lambda: None)
    else:
        monkeypatch.setattr(durable, "syncfs", lambda fd: False)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS, staging=staging)
    # Each volume: its root, "sub" and "sub/f".
    assert len(fsynced) == 6
    for index, path in staging.items():
        assert (path / "sub" / "f").read_text() == f"volume {index}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to other owners")
def test_owners_survive_the_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pgdata").mkdir(parents=True)
    (src / "pgdata" / "PG_VERSION").write_text("15\n")
    os.chown(src / "pgdata", 999, 999)
    os.chown(src / "pgdata" / "PG_VERSION", 999, 998)
    (src / "root-owned").write_text("x")
    dest = tmp_path / "a.tar.zst"
    write_archive(
        dest,
        {"id": "w", "name": "w", "kind": "image"},
        [VolumeSource(index=0, name="db", scope="stage", source="db", path=src)],
    )
    out = tmp_path / "out"
    out.mkdir()
    with open(dest, "rb") as f:
        read_archive(f, limits=Limits(max_bytes=10**9), staging={0: out})
    owner = lambda p: (os.lstat(p).st_uid, os.lstat(p).st_gid)  # noqa: E731
    assert owner(out / "pgdata") == (999, 999)
    assert owner(out / "pgdata" / "PG_VERSION") == (999, 998)
    assert owner(out / "root-owned") == (0, 0)


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A POSIX ACL xattr blob: version 2, then (tag, perm, id) entries."""
    return (2).to_bytes(4, "little") + b"".join(
        tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + qid.to_bytes(4, "little")
        for tag, perm, qid in entries
    )


NO_ID = 0xFFFFFFFF
# owner rw-, user 1234 rw-, group r--, mask rw-, other ---
FIFO_ACL = _acl(
    (0x01, 6, NO_ID), (0x02, 6, 1234), (0x04, 4, NO_ID), (0x10, 6, NO_ID), (0x20, 0, NO_ID)
)


def test_every_entry_deeper_than_the_cap_is_skipped_so_the_archive_says_incomplete(
    tmp_path: Path,
) -> None:
    """A directory 64 levels down is kept; a file, link or fifo inside it is not (it would
    be 65 components deep, which the reader refuses): the archive must not claim it."""
    root = tmp_path / "vol"
    deep = root.joinpath(*["d"] * 64)
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    (deep / "l").symlink_to("f")
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source])
    assert not result.complete
    assert len(result.skipped) == 2 and all("deeper than 64" in s for s in result.skipped)
    staged = tmp_path / "staged"
    staged.mkdir()
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS, staging={0: staged})
    assert staged.joinpath(*["d"] * 64).is_dir()


def test_attributes_too_many_to_list_are_a_skip_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    (root / "crowded").write_text("x")
    real = os.listxattr

    def listxattr(target: Any, *a: Any, **kw: Any) -> list[str]:
        if isinstance(target, int) and os.readlink(f"/proc/self/fd/{target}").endswith("crowded"):
            raise OSError(7, "Argument list too long")  # E2BIG
        return real(target, *a, **kw)

    monkeypatch.setattr(os, "listxattr", listxattr)
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source])
    assert not result.complete
    assert "too many to list" in result.skipped[0]


def test_a_fifo_keeps_its_acl(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    root.mkdir()
    os.mkfifo(root / "pipe", 0o660)
    try:
        os.setxattr(root / "pipe", "system.posix_acl_access", FIFO_ACL)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")
    before = os.getxattr(root / "pipe", "system.posix_acl_access")
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source])
    assert result.complete
    staged = tmp_path / "staged"
    staged.mkdir()
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS, staging={0: staged})
    assert os.getxattr(staged / "pipe", "system.posix_acl_access") == before
    assert stat.S_IMODE(os.lstat(staged / "pipe").st_mode) == stat.S_IMODE(
        os.lstat(root / "pipe").st_mode
    )


def test_a_default_acl_above_staging_never_reaches_the_restored_tree(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("x")
    source = VolumeSource(index=0, name="v", scope="stage", source="v", path=root)
    result = _write(tmp_path, [source])
    parent = tmp_path / "restore-parent"
    parent.mkdir()
    default = _acl(
        (0x01, 7, NO_ID), (0x02, 7, 1234), (0x04, 5, NO_ID), (0x10, 7, NO_ID), (0x20, 5, NO_ID)
    )
    try:
        os.setxattr(parent, "system.posix_acl_default", default)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")
    staged = parent / "staged"
    staged.mkdir()  # inherits the default ACL, as a staging directory beside a volume would
    with open(result.path, "rb") as f:
        read_archive(f, limits=LIMITS, staging={0: staged})
    for path in (staged, staged / "sub", staged / "sub" / "f"):
        assert not [n for n in os.listxattr(path) if n.startswith("system.posix_acl")], path
