"""The writer's second pass: each volume's spool records -> tar bytes into the pipe.

The manifest member first (written by the caller), then, per volume, the root
and every spooled entry in order. A regular file is opened ``O_NOFOLLOW`` under
its parent's fd and read extent by extent (``SEEK_DATA``/``SEEK_HOLE`` when it
takes fewer blocks than its size), holes sent as zeros. Exactly the scanned size
is written: a file that grew is cut, one that shrank or vanished is padded with
zeros, a directory that vanished keeps its scanned metadata, each with a
warning, so the manifest's counts stay true. It never follows a symlink.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable
from typing import IO, Any

from moorage.snapshots.archive.format import DROPPED_MODE_BITS, VOLUMES_DIR, VolumeSource
from moorage.snapshots.archive.pipe import CHUNK, Pipe
from moorage.snapshots.archive.scan import (
    DIR_OPEN,
    FRAME,
    META,
    SIZE,
    SPOOL_DIR,
    SPOOL_FILE,
    SPOOL_HARDLINK,
    SPOOL_SYMLINK,
    SPOOL_VOLUME,
    Notes,
    printable,
    read_xattrs,
    unpack_xattrs,
)
from moorage.snapshots.archive.tar import BLOCK, DIR, FIFO, LNK, REG, SYM, member_header

_ZEROS = memoryview(bytes(CHUNK))
_PROGRESS_EVERY = 1 << 20
_FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class TarStream:
    """The tar stream into the pipe: small writes batched, file data in pooled buffers."""

    def __init__(self, out: Pipe, notes: Notes, progress: Callable[[int], None] | None) -> None:
        self._out = out
        self._buffer = bytearray()  # each zstd call costs; headers come in 512 bytes
        self._notes = notes
        self._progress = progress
        self.done = 0
        self._reported = 0

    def write(self, data: bytes | memoryview) -> None:
        if len(data) >= CHUNK // 4:
            self.flush()
            self._out.send(data)
            return
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._out.send(bytes(self._buffer))
            self._buffer.clear()

    def data(self, data: bytes | memoryview, pooled: bytearray | None = None) -> None:
        """File data: sent on at once (after any batched headers), counted for progress."""
        self.flush()
        self._out.send(data, pooled)
        self.done += len(data)
        if self._progress is not None and self.done - self._reported >= _PROGRESS_EVERY:
            self._reported = self.done
            self._progress(self.done)

    def zeros(self, size: int) -> None:
        while size:
            n = min(size, CHUNK)
            self.data(_ZEROS[:n])
            size -= n

    def pad(self, size: int) -> None:
        if size % BLOCK:
            self.write(bytes(BLOCK - size % BLOCK))

    def end(self) -> None:
        self.write(bytes(2 * BLOCK))
        self.flush()
        if self._progress is not None and self.done != self._reported:
            self._progress(self.done)

    # --- one volume, from its spool -----------------------------------------

    def volume(self, volume: VolumeSource, spool: IO[bytes]) -> None:
        """Second pass: stream every spooled entry of one volume, exactly as counted."""
        root_fd = os.open(volume.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack: list[tuple[bytes, int]] = [(b"", root_fd)]
        prefix = f"{VOLUMES_DIR}/{volume.index}/".encode()
        try:
            st = os.fstat(root_fd)
            xattrs = read_xattrs(root_fd, volume, b".", self._notes)
            self.write(self._header(volume, b"", prefix, DIR, st.st_mode, st, xattrs=xattrs))
            while True:
                kind = spool.read(1)
                if kind in (b"", SPOOL_VOLUME):
                    if kind:
                        spool.seek(-1, os.SEEK_CUR)
                    return
                name_len, payload_len = FRAME.unpack(spool.read(FRAME.size))
                rel = spool.read(name_len)
                payload = spool.read(payload_len)
                parts = rel.split(b"/")
                parent_rel = b"/".join(parts[:-1])
                while stack[-1][0] != parent_rel:
                    _, fd = stack.pop()
                    if fd >= 0:
                        os.close(fd)
                    if not stack:
                        raise RuntimeError(f"capture spool out of order at {rel!r}")
                parent_fd = stack[-1][1]
                if kind == SPOOL_DIR:
                    stack.append(
                        (rel, self._directory(volume, prefix, rel, parts[-1], parent_fd, payload))
                    )
                elif kind == SPOOL_FILE:
                    (size,) = SIZE.unpack(payload)
                    self._file(volume, prefix, rel, parts[-1], parent_fd, size)
                else:
                    self._other(volume, prefix, rel, kind, payload)
        finally:
            for _, fd in stack:
                if fd >= 0:
                    os.close(fd)

    def _header(
        self,
        volume: VolumeSource,
        rel: bytes,
        prefix: bytes,
        kind: bytes,
        mode: int,
        st: Any,
        *,
        size: int = 0,
        linkname: bytes = b"",
        xattrs: dict[str, bytes] | None = None,
    ) -> bytes:
        if mode & DROPPED_MODE_BITS:
            self._notes.warn(
                f"volume {volume.name}: {printable(rel or b'.')}: dropped its setuid/setgid bit"
            )
        return member_header(
            prefix + rel,
            kind,
            size=size,
            mode=mode,
            mtime_ns=st.st_mtime_ns,
            uid=st.st_uid,
            gid=st.st_gid,
            linkname=linkname,
            xattrs=xattrs,
        )

    def _directory(
        self,
        volume: VolumeSource,
        prefix: bytes,
        rel: bytes,
        name: bytes,
        parent_fd: int,
        payload: bytes,
    ) -> int:
        mode, uid, gid, mtime_ns = META.unpack_from(payload)
        xattrs = unpack_xattrs(payload, META.size)
        fd = -1
        if parent_fd >= 0:
            try:
                fd = os.open(name, DIR_OPEN, dir_fd=parent_fd)
            except OSError:
                fd = -1
        if fd < 0:
            self._notes.warn(
                f"volume {volume.name}: directory {printable(rel)} vanished during capture; "
                "stored as it was scanned, its files as zeros"
            )
        meta = _Meta(uid, gid, mtime_ns)
        self.write(self._header(volume, rel, prefix, DIR, mode, meta, xattrs=xattrs))
        return fd

    def _other(
        self, volume: VolumeSource, prefix: bytes, rel: bytes, kind: bytes, payload: bytes
    ) -> None:
        mode, uid, gid, mtime_ns = META.unpack_from(payload)
        meta = _Meta(uid, gid, mtime_ns)
        tail = payload[META.size :]
        if kind == SPOOL_SYMLINK:
            self.write(self._header(volume, rel, prefix, SYM, 0o777, meta, linkname=tail))
        elif kind == SPOOL_HARDLINK:
            self.write(self._header(volume, rel, prefix, LNK, mode & 0o1777, meta, linkname=tail))
        else:
            acls = unpack_xattrs(payload, META.size)
            self.write(self._header(volume, rel, prefix, FIFO, mode, meta, xattrs=acls))

    def _file(
        self,
        volume: VolumeSource,
        prefix: bytes,
        rel: bytes,
        name: bytes,
        parent_fd: int,
        size: int,
    ) -> None:
        fd = -1
        if parent_fd >= 0:
            try:
                fd = os.open(name, _FILE_READ, dir_fd=parent_fd)
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    os.close(fd)
                    fd = -1
            except OSError:
                fd = -1
        try:
            if fd < 0:
                self._notes.warn(
                    f"volume {volume.name}: file {printable(rel)} vanished during capture; "
                    f"stored as {size} zero bytes to keep the manifest's counts"
                )
                now = time.time_ns()
                self.write(
                    self._header(volume, rel, prefix, REG, 0o600, _Meta(0, 0, now), size=size)
                )
                self.zeros(size)
            else:
                xattrs = read_xattrs(fd, volume, rel, self._notes)
                self.write(
                    self._header(volume, rel, prefix, REG, st.st_mode, st, size=size, xattrs=xattrs)
                )
                copied = self._copy(fd, size, sparse=st.st_blocks * 512 < min(size, st.st_size))
                if copied < size or os.fstat(fd).st_size != size:
                    self._notes.warn(
                        f"volume {volume.name}: file {printable(rel)} changed size during capture; "
                        f"stored its first {size} bytes"
                        + (f" ({size - copied} of them zeros)" if copied < size else "")
                    )
                self.zeros(size - copied)
            self.pad(size)
        finally:
            if fd >= 0:
                os.close(fd)

    def _copy(self, fd: int, size: int, *, sparse: bool) -> int:
        """Stream the first ``size`` bytes of ``fd``, holes as zeros (found with
        ``SEEK_DATA``/``SEEK_HOLE`` when ``sparse``); answer how far the file reached."""
        pos = 0
        while pos < size:
            end = size
            if sparse:
                try:
                    data_at = min(os.lseek(fd, pos, os.SEEK_DATA), size)
                except OSError as exc:
                    if exc.errno != errno.ENXIO:
                        raise
                    data_at = size  # nothing but a hole from here to the end
                self.zeros(data_at - pos)
                pos = data_at
                if pos >= size:
                    break
                end = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
            while pos < end:
                buf = self._out.buffer()
                n = os.preadv(fd, [memoryview(buf)[: min(end - pos, CHUNK)]], pos)
                if not n:
                    self._out.send(b"", buf)  # hands the buffer back
                    return pos  # the file shrank under us
                self.data(memoryview(buf)[:n], buf)
                pos += n
        return pos


class _Meta:
    """The stat fields a header needs, for entries whose stat came from the spool."""

    __slots__ = ("st_gid", "st_mtime_ns", "st_uid")

    def __init__(self, uid: int, gid: int, mtime_ns: int) -> None:
        self.st_uid, self.st_gid, self.st_mtime_ns = uid, gid, mtime_ns
