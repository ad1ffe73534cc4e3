"""Swapping a staged directory into a live path, and converging on a wanted state by inode.

``exchange`` uses ``renameat2(RENAME_EXCHANGE)`` through ctypes where the
filesystem supports it (one atomic step); ``rename`` is the two-rename
fallback. ``converge`` is what the run, roll-back and recovery all use: it looks
at which inode is where and moves directories until the wanted inode sits at
the live path, whatever step a crash interrupted.

It must never delete anything, and never move a directory it cannot name by inode.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

AT_FDCWD = -100
RENAME_EXCHANGE = 2

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


class SwapError(OSError):
    """A swap that cannot be done as asked: nothing was moved by the failing step."""


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two existing paths (same filesystem)."""
    if _renameat2 is None:
        raise SwapError(errno.ENOSYS, "renameat2 is not available in this C library")
    rc = _renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise SwapError(err, f"renameat2 exchange {a} <-> {b}: {os.strerror(err)}")


def supports_exchange(directory: Path) -> bool:
    """Probe RENAME_EXCHANGE on the filesystem of ``directory`` with two scratch dirs."""
    a = directory / f".moorage-probe-{os.getpid()}-a"
    b = directory / f".moorage-probe-{os.getpid()}-b"
    try:
        a.mkdir()
        b.mkdir()
        exchange(a, b)
        return True
    except OSError:
        return False
    finally:
        for p in (a, b):
            try:
                p.rmdir()
            except OSError:
                pass


def fsync_dir(path: Path) -> None:
    """Make the names in ``path`` durable (a rename, a created or removed entry)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def inode(path: Path) -> int | None:
    """The inode at ``path`` itself (a link is not followed), or None when nothing is there."""
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


def converge(
    live: Path,
    want: int,
    other: int,
    spares: list[Path],
    *,
    use_exchange: bool,
) -> None:
    """Move directories until the one with inode ``want`` is at ``live``.

    ``other`` is the inode that must leave ``live``; it ends up at a free path
    among ``spares`` (or where it already is). Idempotent: run it again after a
    crash at any point and it finishes the job.
    """
    if inode(live) == want:
        return
    holder = next((p for p in spares if inode(p) == want), None)
    if holder is None:
        raise SwapError(errno.ENOENT, f"the directory to put at {live} is missing")
    at_live = inode(live)
    if at_live is None:
        os.rename(holder, live)
    elif at_live == other and use_exchange:
        exchange(holder, live)
    elif at_live == other:
        free = next((p for p in spares if inode(p) is None), None)
        if free is None:
            raise SwapError(errno.EEXIST, f"no free path to move {live} aside")
        os.rename(live, free)
        fsync_dir(live.parent)
        os.rename(holder, live)
    else:
        raise SwapError(errno.EEXIST, f"{live} holds a directory this restore does not know")
    fsync_dir(live.parent)
