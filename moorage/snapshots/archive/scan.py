"""The writer's first pass: walk one volume into the spool, in archive order.

Each volume is walked depth-first through directory fds opened ``O_NOFOLLOW``,
names sorted as bytes. Every entry becomes one spool record (the format below)
and is counted by type for the manifest; what no archive can hold (sockets,
devices, names or paths over the caps, attributes over their cap) is skipped and
noted. This module also holds what both passes share: ``Notes`` and
``read_xattrs``. It never follows a symlink and never writes outside the spool.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import IO

from moorage.snapshots.archive.format import (
    DEFAULT_MAX_COMPONENT_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_LINK_BYTES,
    DEFAULT_MAX_NAME_BYTES,
    DEFAULT_MAX_XATTR_BYTES,
    VOLUMES_DIR,
    VolumeSource,
    component_problem,
    empty_counts,
    xattr_allowed,
)
from moorage.snapshots.archive.tar import XATTR_KEY, pax_record

_MAX_WARNINGS = 1000
DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a fifo to read never waits for a writer.
_FIFO_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

# Spool records: kind, then ">HI" (name length, payload length), name, payload.
SPOOL_VOLUME = b"V"
SPOOL_DIR = b"D"
SPOOL_FILE = b"F"
SPOOL_HARDLINK = b"H"
SPOOL_SYMLINK = b"L"
SPOOL_FIFO = b"P"
META = struct.Struct(">IIIq")  # mode, uid, gid, mtime_ns
FRAME = struct.Struct(">HI")
SIZE = struct.Struct(">Q")


class Notes:
    """Warnings (capped) and the entries left out of the archive (never capped)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0
        self.skipped: list[str] = []

    def warn(self, message: str) -> None:
        if len(self.items) < _MAX_WARNINGS:
            self.items.append(message)
        else:
            self.dropped += 1

    def skip(self, volume: VolumeSource, rel: bytes, why: str) -> None:
        where = f"volume {volume.name}: {printable(rel)}"
        self.skipped.append(f"{where}: {why}")
        self.warn(f"{where}: skipped, {why}")

    def warnings(self) -> list[str]:
        if self.dropped:
            return [*self.items, f"... and {self.dropped} more warnings"]
        return list(self.items)


def printable(rel: bytes) -> str:
    return repr(rel.decode("utf-8", "backslashreplace"))


def _special_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def _meta(st: os.stat_result) -> bytes:
    return META.pack(st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns)


def read_xattrs(fd: int, volume: VolumeSource, rel: bytes, notes: Notes) -> dict[str, bytes]:
    """The user.* attributes and POSIX ACLs of an open file or directory."""
    try:
        names = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        if exc.errno == errno.E2BIG:
            notes.skip(volume, rel, "its extended attributes are too many to list")
            return {}
        raise
    kept: dict[str, bytes] = {}
    size = 0
    for name in names:
        if not xattr_allowed(name):
            if not name.startswith("security.selinux"):
                notes.warn(f"volume {volume.name}: {printable(rel)}: left out the attribute {name}")
            continue
        try:
            value = os.getxattr(fd, name)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed since it was listed
            raise
        # Measured as stored (the pax record), which is what the reader caps.
        size += len(pax_record((XATTR_KEY + name).encode(), value))
        if size > DEFAULT_MAX_XATTR_BYTES:
            notes.skip(volume, rel, f"its extended attribute {name} is over the size cap")
            continue
        kept[name] = value
    return kept


def _pack_xattrs(xattrs: dict[str, bytes]) -> bytes:
    out = [struct.pack(">H", len(xattrs))]
    for key, value in xattrs.items():
        encoded = key.encode()
        out.append(struct.pack(">HI", len(encoded), len(value)) + encoded + value)
    return b"".join(out)


def unpack_xattrs(data: bytes, pos: int) -> dict[str, bytes]:
    (count,) = struct.unpack_from(">H", data, pos)
    pos += 2
    xattrs = {}
    for _ in range(count):
        klen, vlen = struct.unpack_from(">HI", data, pos)
        pos += 6
        key = data[pos : pos + klen].decode()
        xattrs[key] = data[pos + klen : pos + klen + vlen]
        pos += klen + vlen
    return xattrs


def _record(spool: IO[bytes], kind: bytes, rel: bytes, payload: bytes) -> None:
    spool.write(kind + FRAME.pack(len(rel), len(payload)) + rel + payload)


def _listing(dir_fd: int) -> tuple[int, list[os.DirEntry[str]]]:
    """An open directory and its entries, sorted so the last is the next to visit."""
    try:
        with os.scandir(dir_fd) as it:
            return dir_fd, sorted(it, key=lambda e: os.fsencode(e.name), reverse=True)
    except BaseException:
        os.close(dir_fd)
        raise


def scan_volume(volume: VolumeSource, spool: IO[bytes], notes: Notes) -> dict[str, int]:
    """First pass: spool every entry in archive order and count it by type."""
    counts = empty_counts()
    inodes: dict[tuple[int, int], bytes] = {}  # hard-link groups: inode -> first name
    prefix = f"{VOLUMES_DIR}/{volume.index}/".encode()
    root = os.open(volume.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [(*_listing(root), b"", 0)]
    try:
        while stack:
            dir_fd, entries, parent, depth = stack[-1]
            if not entries:
                stack.pop()
                os.close(dir_fd)
                continue
            entry = entries.pop()
            name = os.fsencode(entry.name)
            rel = parent + name
            problem = component_problem(name, DEFAULT_MAX_COMPONENT_BYTES)
            if problem is not None:
                notes.skip(volume, rel, f"its name has {problem}")
                continue
            if len(prefix) + len(rel) + 1 > DEFAULT_MAX_NAME_BYTES:
                notes.skip(volume, rel, f"its path is over {DEFAULT_MAX_NAME_BYTES} bytes")
                continue
            if depth + 1 > DEFAULT_MAX_DEPTH:
                # Every entry, not only directories: the reader's rule counts components.
                notes.skip(volume, rel, f"it is deeper than {DEFAULT_MAX_DEPTH} levels")
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    try:
                        child = os.open(entry.name, DIR_OPEN, dir_fd=dir_fd)
                    except OSError as exc:
                        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                            raise
                        notes.warn(
                            f"volume {volume.name}: {printable(rel)} stopped being a directory"
                        )
                        continue
                    child_fd, child_entries = _listing(child)
                    payload = _meta(os.fstat(child_fd)) + _pack_xattrs(
                        read_xattrs(child_fd, volume, rel, notes)
                    )
                    _record(spool, SPOOL_DIR, rel, payload)
                    counts["dirs"] += 1
                    stack.append((child_fd, child_entries, rel + b"/", depth + 1))
                elif stat.S_ISREG(mode):
                    first = inodes.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
                    if first is not None:
                        _record(spool, SPOOL_HARDLINK, rel, _meta(st) + first)
                        counts["hardlinks"] += 1
                        continue
                    if st.st_nlink > 1:
                        inodes[(st.st_dev, st.st_ino)] = prefix + rel
                    _record(spool, SPOOL_FILE, rel, SIZE.pack(st.st_size))
                    counts["files"] += 1
                    counts["bytes"] += st.st_size
                    counts["allocated_bytes"] += st.st_blocks * 512
                elif stat.S_ISLNK(mode):
                    target = os.readlink(entry.name, dir_fd=dir_fd)
                    encoded = os.fsencode(target)
                    if len(encoded) > DEFAULT_MAX_LINK_BYTES:
                        notes.skip(volume, rel, "its link target is too long")
                        continue
                    _record(spool, SPOOL_SYMLINK, rel, _meta(st) + encoded)
                    counts["symlinks"] += 1
                elif stat.S_ISFIFO(mode):
                    fifo = os.open(entry.name, _FIFO_OPEN, dir_fd=dir_fd)
                    try:
                        acls = read_xattrs(fifo, volume, rel, notes)
                    finally:
                        os.close(fifo)
                    _record(spool, SPOOL_FIFO, rel, _meta(st) + _pack_xattrs(acls))
                    counts["fifos"] += 1
                else:
                    notes.skip(volume, rel, f"it is {_special_kind(mode)}, which no archive keeps")
            except FileNotFoundError:
                continue  # removed while we looked: simply not part of the snapshot
    finally:
        for dir_fd, _, _, _ in stack:
            os.close(dir_fd)
    return counts
