"""What the reader does to the filesystem for each entry it has already validated.

Staging roots are opened and checked empty, and lose the ACLs they inherited;
files are created ``O_CREAT|O_EXCL|O_NOFOLLOW`` and written with zero runs left
as holes; then owner (as root), extended attributes (ACLs included), mode and
mtime go on, in that order. Symlinks are made with ``symlinkat`` and never
followed, fifos are finished through an ``O_NOFOLLOW`` fd, hard links are made
with ``linkat`` to a regular file found under the volume's root fd, and a
directory's metadata goes on when the reader leaves it, after its children.
Every call works under a directory fd the reader holds; nothing here decides
whether an entry is allowed (the reader and ``members`` do that first).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from moorage.snapshots.archive.format import ACL_XATTRS, MODE_MASK, fail, shown
from moorage.snapshots.archive.tar import FIFO, Header

DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FIFO_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_CHOWN = os.geteuid() == 0  # only root can give files back to their owners
_HOLE = 4096  # a zero run of a whole aligned block of this size is left as a hole
_ZERO_BLOCK = bytes(_HOLE)


def _drop_inherited_acls(fd: int) -> None:
    """A staging root may inherit a default ACL from the directory it was made in; every
    entry staged below would inherit it in turn. The archive's own ACLs (the root's
    header included) are the only ones a restored tree gets."""
    for name in ACL_XATTRS:
        try:
            os.removexattr(fd, name)
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise


def open_staging(staging: dict[int, Any]) -> dict[int, int]:
    """An fd per staging directory (index -> fd), each checked empty; ``ValueError`` if not."""
    roots: dict[int, int] = {}
    try:
        for index, path in staging.items():
            fd = os.open(path, DIR_OPEN)
            roots[index] = fd
            with os.scandir(fd) as it:
                if next(it, None) is not None:
                    raise ValueError(f"staging directory {path} is not empty")
            _drop_inherited_acls(fd)
    except BaseException:
        for fd in roots.values():
            os.close(fd)
        raise
    return roots


def make_dir(parent_fd: int, leaf: bytes) -> int:
    """A new directory ``0700`` under ``parent_fd``, answered open (its metadata comes last)."""
    os.mkdir(leaf, 0o700, dir_fd=parent_fd)
    return os.open(leaf, DIR_OPEN, dir_fd=parent_fd)


def create_file(parent_fd: int, leaf: bytes) -> int:
    """A new, empty ``0600`` file under ``parent_fd``, never through a link."""
    return os.open(leaf, _FILE_CREATE, 0o600, dir_fd=parent_fd)


def sparse_write(fd: int, data: bytes, start: int, end: int, offset: int) -> int:
    """Write ``data[start:end]`` at file ``offset``, leaving every zero block that is
    whole and aligned in the file unwritten (a hole), and zero edges shorter than a
    block too. Answers the file offset just past the last byte written, or 0.
    """
    view = memoryview(data)
    base = offset - start  # file offset of data[0]
    written_to = 0

    def flush(lo: int, hi: int) -> None:
        nonlocal written_to
        if hi <= lo or (hi - lo < _HOLE and data.count(0, lo, hi) == hi - lo):
            return
        todo = view[lo:hi]
        at = base + lo
        while todo:
            n = os.pwrite(fd, todo, at)
            todo, at = todo[n:], at + n
        written_to = base + hi

    write_from = search = start
    while True:
        found = data.find(_ZERO_BLOCK, search, end)
        if found < 0:
            break
        aligned = found + (-(base + found)) % _HOLE
        if aligned + _HOLE > end:
            break
        if not data.startswith(_ZERO_BLOCK, aligned):
            search = aligned + _HOLE
            continue
        zero_end = aligned + _HOLE
        while zero_end + _HOLE <= end and data.startswith(_ZERO_BLOCK, zero_end):
            zero_end += _HOLE
        flush(write_from, aligned)
        write_from = search = zero_end
    flush(write_from, end)
    return written_to


def end_file(member: Header, fd: int, written_to: int, *, fsync_each: bool) -> None:
    """A file whose data is all written: its trailing hole, then its metadata."""
    if written_to < member.size:
        os.ftruncate(fd, member.size)  # a trailing hole
    finish_fd(member, fd, fsync_each=fsync_each)


def finish_fd(member: Header, fd: int, *, fsync_each: bool) -> None:
    """Owner, extended attributes, mode, then times, on an open file or directory.

    The order matters: chown clears mode bits, and setting an ACL rewrites the
    group bits that the final chmod puts back.
    """
    if _CHOWN:
        os.fchown(fd, member.uid, member.gid)
    for key, value in member.xattrs.items():
        os.setxattr(fd, key, value)
    os.fchmod(fd, member.mode & MODE_MASK)
    os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))
    if fsync_each and member.kind != FIFO:
        os.fsync(fd)


def make_symlink(member: Header, dir_fd: int, leaf: bytes) -> None:
    """A symlink at ``leaf`` with its owner and mtime, never followed."""
    # symlinkat: the link is data, created under the staging fd, never followed.
    os.symlink(member.linkname, leaf, dir_fd=dir_fd)
    if _CHOWN:
        os.chown(leaf, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
    os.utime(leaf, ns=(member.mtime_ns, member.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def make_fifo(member: Header, dir_fd: int, leaf: bytes, *, fsync_each: bool) -> None:
    """A fifo, finished through an fd: opened ``O_NOFOLLOW`` and checked to be a fifo, so
    nothing renamed over the name in the meantime is ever changed."""
    os.mkfifo(leaf, 0o600, dir_fd=dir_fd)
    fd = os.open(leaf, _FIFO_OPEN, dir_fd=dir_fd)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            fail(f"member {shown(member.name)}: the fifo it made was replaced while staging")
        finish_fd(member, fd, fsync_each=fsync_each)
    finally:
        os.close(fd)


def make_hardlink(
    member: Header, root_fd: int, target: list[bytes], dir_fd: int, leaf: bytes
) -> None:
    """A second name at ``leaf`` for the regular file at ``target`` (its components below
    the volume's ``root_fd``), opened without following and checked ``S_ISREG`` first."""
    fds = []
    try:
        parent_fd = root_fd
        for part in target[:-1]:
            parent_fd = os.open(part, DIR_OPEN, dir_fd=parent_fd)
            fds.append(parent_fd)
        st = os.stat(target[-1], dir_fd=parent_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            fail(f"member {shown(member.name)}: its link target is not a regular file")
        os.link(target[-1], leaf, src_dir_fd=parent_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    finally:
        for fd in fds:
            os.close(fd)


def close_dir(fd: int, header: Header | None, *, root: bool, fsync_each: bool) -> None:
    """Finish a directory: its metadata goes on last, after its children. A volume
    root's fd belongs to the caller and stays open."""
    try:
        if header is not None:
            finish_fd(header, fd, fsync_each=fsync_each)
    finally:
        if not root:
            os.close(fd)
