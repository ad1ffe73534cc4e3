"""Trees at ``lstat`` level, for comparing what was captured with what came back.

``tree_state`` answers rel path (str, surrogate-escaped bytes) -> a tuple of every
property an archive keeps: type, permission bits (sticky included), owner, group,
mtime in ns, content digest, link target, hard-link group and extended attributes.
Hard-link groups are named by their first path in sorted order, so two trees with
the same links compare equal whatever their inode numbers.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

COUNTED = ("files", "dirs", "symlinks", "hardlinks", "fifos", "bytes")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "dir"),
        (stat.S_ISREG, "file"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "device"


def _xattrs(path: Path, kind: str) -> tuple[tuple[str, bytes], ...]:
    if kind not in ("file", "dir"):
        return ()
    names = sorted(n for n in os.listxattr(path, follow_symlinks=False) if n.startswith("user."))
    return tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in names)


def _walk(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [Path(dirpath) / name for name in dirnames + filenames]
    return sorted(out)


def tree_state(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``root`` (and ``root`` itself as ``"."``) at lstat level."""
    groups: dict[tuple[int, int], str] = {}
    out: dict[str, tuple[Any, ...]] = {}
    for path in [root, *_walk(root)]:
        st = path.lstat()
        rel = "." if path == root else str(path.relative_to(root))
        kind = _kind(st.st_mode)
        digest = target = group = ""
        if kind == "file":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            group = groups.setdefault((st.st_dev, st.st_ino), rel)
        elif kind == "symlink":
            target = os.readlink(path)
        out[rel] = (
            kind,
            stat.S_IMODE(st.st_mode) if kind != "symlink" else 0,
            st.st_uid,
            st.st_gid,
            st.st_mtime_ns,
            digest,
            target,
            group,
            _xattrs(path, kind),
        )
    return out


def tree_counts(root: Path) -> dict[str, int]:
    """What a format-2 manifest must declare for ``root``."""
    counts = dict.fromkeys(COUNTED, 0)
    seen: set[tuple[int, int]] = set()
    for path in _walk(root):
        st = path.lstat()
        kind = _kind(st.st_mode)
        if kind == "dir":
            counts["dirs"] += 1
        elif kind == "symlink":
            counts["symlinks"] += 1
        elif kind == "fifo":
            counts["fifos"] += 1
        elif kind == "file" and (st.st_dev, st.st_ino) in seen:
            counts["hardlinks"] += 1
        elif kind == "file":
            seen.add((st.st_dev, st.st_ino))
            counts["files"] += 1
            counts["bytes"] += st.st_size
    return counts


def allocated(path: Path) -> int:
    """Bytes a file takes on disk (``st_blocks`` x 512)."""
    return path.lstat().st_blocks * 512
