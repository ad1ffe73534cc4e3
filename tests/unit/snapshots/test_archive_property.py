"""Generated trees survive capture and staging unchanged, at ``lstat`` level.

Hypothesis builds trees with every entry type a volume can hold (files with holes,
directories, symlinks pointing anywhere, fifos, hard-link groups), names as raw
bytes (backslash, newline, 0xE9, 255-byte components), modes with the sticky bit,
owners, mtimes in ns and ``user.*`` attributes; the staged copy must equal the
source entry for entry, and a sparse file must not grow on disk.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.snapshots.archive import Limits, VolumeSource, read_archive, write_archive
from tests.unit.snapshots.trees import COUNTED, allocated, tree_counts, tree_state

KiB, MiB = 1 << 10, 1 << 20
ROOT = os.geteuid() == 0

NAMES = st.sampled_from(
    [
        b"a",
        b"data.db",
        b"back\\slash",
        b"new\nline",
        b"caf\xe9",
        b"\xff\xfe-not-utf8",
        b"x" * 255,
        b" spaced ",
        b"-dash",
        b"ctl\x01\x7f",
        b"...",
        b".hidden",
        "ünï ✓".encode(),
    ]
)
MTIMES = st.integers(0, 4_000_000_000 * 10**9)
OWNERS = st.sampled_from([0, 999, 1000, 65534]) if ROOT else st.just(os.geteuid())
XATTRS = st.dictionaries(
    st.sampled_from(["user.a", "user.mime_type", "user.checksum"]),
    st.binary(max_size=64),
    max_size=2,
)


@dataclass
class Node:
    kind: str  # file, sparse, dir, symlink, fifo
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    data: bytes = b""
    size: int = 0  # sparse files: apparent size
    extents: list[tuple[int, bytes]] = field(default_factory=list)
    target: bytes = b""
    xattrs: dict[str, bytes] = field(default_factory=dict)
    children: dict[bytes, Node] = field(default_factory=dict)


def _leaf(draw: st.DrawFn) -> Node:
    kind = draw(st.sampled_from(["file", "file", "sparse", "symlink", "fifo"]))
    owner = draw(OWNERS), draw(OWNERS)
    mtime = draw(MTIMES)
    if kind == "symlink":
        target = draw(st.binary(min_size=1, max_size=120).filter(lambda b: b"\0" not in b))
        return Node(kind, 0o777, *owner, mtime, target=target)
    mode = draw(st.sampled_from([0o644, 0o600, 0o755, 0o444, 0o1644, 0o640]))
    if kind == "fifo":
        return Node(kind, mode, *owner, mtime)
    node = Node(kind, mode, *owner, mtime, xattrs=draw(XATTRS))
    if kind == "file":
        node.data = draw(st.binary(max_size=3000))
    else:
        node.size = draw(st.integers(1, 3 * MiB))
        offsets = draw(st.lists(st.integers(0, node.size - 1), max_size=3, unique=True))
        node.extents = [(at, draw(st.binary(min_size=1, max_size=9000))) for at in offsets]
    return node


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> Node:
    node = Node(
        "dir",
        draw(st.sampled_from([0o755, 0o700, 0o1777, 0o555, 0o2755])),
        draw(OWNERS),
        draw(OWNERS),
        draw(MTIMES),
        xattrs=draw(XATTRS),
    )
    names = draw(st.lists(NAMES, max_size=5, unique=True))
    for name in names:
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            node.children[name] = draw(trees(depth + 1))
        else:
            node.children[name] = _leaf(draw)
    return node


def _xattrs_supported(path: Path) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    os.removexattr(path, "user.probe")
    return True


def _build(path: bytes, node: Node, xattrs: bool, files: list[bytes]) -> None:
    """Create ``node`` at ``path``; directories get their metadata after their children."""
    if node.kind == "dir":
        os.mkdir(path)
        for name, child in node.children.items():
            _build(path + b"/" + name, child, xattrs, files)
    elif node.kind == "symlink":
        os.symlink(node.target, path)
    elif node.kind == "fifo":
        os.mkfifo(path)
    else:
        with open(path, "wb") as f:
            if node.kind == "file":
                f.write(node.data)
            else:
                f.truncate(node.size)
                for at, data in node.extents:
                    f.seek(at)
                    f.write(data)
        files.append(path)
    if node.kind != "symlink":
        if xattrs and node.kind != "fifo":
            for key, value in node.xattrs.items():
                os.setxattr(path, key, value)
        if ROOT:
            os.chown(path, node.uid, node.gid)
        os.chmod(path, node.mode)
    elif ROOT:
        os.chown(path, node.uid, node.gid, follow_symlinks=False)
    os.utime(path, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=False)


def _link_groups(draw: st.DrawFn, root: bytes, files: list[bytes]) -> None:
    """Add hard links to some files, in the volume's root (names no tree uses)."""
    if not files:
        return
    for i in range(draw(st.integers(0, 3))):
        source = draw(st.sampled_from(files))
        os.link(source, root + b"/hardlink-%d" % i)
    os.utime(root, ns=(10**18, 10**18))


@pytest.mark.skipif(not hasattr(os, "SEEK_DATA"), reason="needs SEEK_DATA/SEEK_HOLE")
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tree=trees(), data=st.data())
def test_generated_trees_come_back_identical(tree: Node, data: st.DataObject) -> None:
    tree.mode |= 0o700  # the volume root: readable by the capture, as a real one is
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        xattrs = _xattrs_supported(base)
        src = bytes(base / "src")
        files: list[bytes] = []
        _build(src, tree, xattrs, files)
        _link_groups(data.draw, src, files)
        source = Path(os.fsdecode(src))
        expected = tree_state(source)
        counts = tree_counts(source)

        written = write_archive(
            base / "a.tar.zst",
            {"id": "w", "name": "w", "kind": "image"},
            [VolumeSource(index=0, name="v", scope="stage", source="v", path=source)],
        )
        assert written.complete, written.skipped
        assert {k: written.manifest["volumes"][0][k] for k in COUNTED} == counts

        staged = base / "staged"
        staged.mkdir()
        with open(written.path, "rb") as f:
            manifest = read_archive(f, limits=Limits(max_bytes=1 << 30), staging={0: staged})
        assert manifest == written.manifest

        got = tree_state(staged)
        # setgid on a directory is dropped on purpose (host safety); all else is equal.
        assert got.keys() == expected.keys()
        for rel, entry in expected.items():
            want = entry if entry[0] != "dir" else (entry[0], entry[1] & ~0o2000, *entry[2:])
            assert got[rel] == want, rel
        for path in files:
            rel = os.fsdecode(path[len(src) + 1 :])
            assert allocated(staged / rel) <= allocated(Path(os.fsdecode(path))) + 4 * 4 * KiB
