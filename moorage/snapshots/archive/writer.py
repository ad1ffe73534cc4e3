"""The archive writer (SPEC section 5): volume trees -> one durable ``.tar.zst``, streamed.

Two passes over each tree, both under directory fds opened ``O_NOFOLLOW``:

    scan     list every entry in archive order into a spool file (metadata, link
             targets, hard-link groups) and count each type for the manifest
    stream   manifest first, then each spooled entry; regular files are opened
             ``O_NOFOLLOW`` and read extent by extent (``SEEK_DATA``/``SEEK_HOLE``),
             holes sent as zeros that zstd shrinks to nothing

Memory stays flat: the spool is on disk, data moves in 1 MiB chunks. Exactly the
scanned bytes of each file are written (a file that changed size meanwhile is
cut or zero-padded, with a warning), so the manifest's counts are always true.
Sockets and devices cannot be stored: they are listed in ``WriteResult.skipped``,
so a caller knows the archive does not hold the whole tree. setuid/setgid bits
are dropped with a warning. The writer never follows a symlink, never leaves a
half-written archive under its final name, and never stores what the reader
would refuse.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from moorage.snapshots.archive.format import (
    DEFAULT_MAX_COMPONENT_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_LINK_BYTES,
    DEFAULT_MAX_NAME_BYTES,
    DEFAULT_MAX_XATTR_BYTES,
    DROPPED_MODE_BITS,
    MANIFEST_NAME,
    VOLUMES_DIR,
    VolumeSource,
    WriteResult,
    build_manifest,
    component_problem,
    empty_counts,
    encode_manifest,
    xattr_allowed,
)
from moorage.snapshots.archive.tar import (
    BLOCK,
    DIR,
    FIFO,
    LNK,
    REG,
    SYM,
    XATTR_KEY,
    member_header,
    pax_record,
)

_CHUNK = 1 << 20  # every read and write of file data
_ZEROS = memoryview(bytes(_CHUNK))
_PROGRESS_EVERY = 1 << 20
_MAX_WARNINGS = 1000
_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FIFO_OPEN = _FILE_READ  # O_NONBLOCK: opening a fifo to read never waits for a writer

# Spool records: kind, then ">HI" (name length, payload length), name, payload.
_VOLUME = b"V"
_DIRECTORY = b"D"
_FILE = b"F"
_HARDLINK = b"H"
_SYMLINK = b"L"
_FIFO = b"P"
_META = struct.Struct(">IIIq")  # mode, uid, gid, mtime_ns
_FRAME = struct.Struct(">HI")
_SIZE = struct.Struct(">Q")


class _Notes:
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
        where = f"volume {volume.name}: {_text(rel)}"
        self.skipped.append(f"{where}: {why}")
        self.warn(f"{where}: skipped, {why}")

    def warnings(self) -> list[str]:
        if self.dropped:
            return [*self.items, f"... and {self.dropped} more warnings"]
        return list(self.items)


def _text(rel: bytes) -> str:
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
    return _META.pack(st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns)


def _xattrs(fd: int, volume: VolumeSource, rel: bytes, notes: _Notes) -> dict[str, bytes]:
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
                notes.warn(f"volume {volume.name}: {_text(rel)}: left out the attribute {name}")
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


def _unpack_xattrs(data: bytes, pos: int) -> dict[str, bytes]:
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
    spool.write(kind + _FRAME.pack(len(rel), len(payload)) + rel + payload)


def _listing(dir_fd: int) -> tuple[int, list[os.DirEntry[str]]]:
    """An open directory and its entries, sorted so the last is the next to visit."""
    try:
        with os.scandir(dir_fd) as it:
            return dir_fd, sorted(it, key=lambda e: os.fsencode(e.name), reverse=True)
    except BaseException:
        os.close(dir_fd)
        raise


def _scan_volume(volume: VolumeSource, spool: IO[bytes], notes: _Notes) -> dict[str, int]:
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
                        child = os.open(entry.name, _DIR_OPEN, dir_fd=dir_fd)
                    except OSError as exc:
                        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                            raise
                        notes.warn(f"volume {volume.name}: {_text(rel)} stopped being a directory")
                        continue
                    child_fd, child_entries = _listing(child)
                    payload = _meta(os.fstat(child_fd)) + _pack_xattrs(
                        _xattrs(child_fd, volume, rel, notes)
                    )
                    _record(spool, _DIRECTORY, rel, payload)
                    counts["dirs"] += 1
                    stack.append((child_fd, child_entries, rel + b"/", depth + 1))
                elif stat.S_ISREG(mode):
                    first = inodes.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
                    if first is not None:
                        _record(spool, _HARDLINK, rel, _meta(st) + first)
                        counts["hardlinks"] += 1
                        continue
                    if st.st_nlink > 1:
                        inodes[(st.st_dev, st.st_ino)] = prefix + rel
                    _record(spool, _FILE, rel, _SIZE.pack(st.st_size))
                    counts["files"] += 1
                    counts["bytes"] += st.st_size
                    counts["allocated_bytes"] += st.st_blocks * 512
                elif stat.S_ISLNK(mode):
                    target = os.readlink(entry.name, dir_fd=dir_fd)
                    encoded = os.fsencode(target)
                    if len(encoded) > DEFAULT_MAX_LINK_BYTES:
                        notes.skip(volume, rel, "its link target is too long")
                        continue
                    _record(spool, _SYMLINK, rel, _meta(st) + encoded)
                    counts["symlinks"] += 1
                elif stat.S_ISFIFO(mode):
                    fifo = os.open(entry.name, _FIFO_OPEN, dir_fd=dir_fd)
                    try:
                        acls = _xattrs(fifo, volume, rel, notes)
                    finally:
                        os.close(fifo)
                    _record(spool, _FIFO, rel, _meta(st) + _pack_xattrs(acls))
                    counts["fifos"] += 1
                else:
                    notes.skip(volume, rel, f"it is {_special_kind(mode)}, which no archive keeps")
            except FileNotFoundError:
                continue  # removed while we looked: simply not part of the snapshot
    finally:
        for dir_fd, _, _, _ in stack:
            os.close(dir_fd)
    return counts


class _HashingFile:
    """The archive file as zstd sees it: counts and hashes every byte on its way out."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._file.write(data)
        return len(data)

    def flush(self) -> None:
        self._file.flush()


class _Stopped(Exception):
    """The consumer gave up (it failed); the producer unwinds quietly."""


class _Pipe:
    """Tar bytes from the producer thread (it reads the trees) to zstd on the caller's.

    Reading files and compressing then overlap, as ``tar | zstd`` overlap in two
    processes (both release the GIL). File data travels in a small pool of reused
    1 MiB buffers (no allocation per read); headers travel as bytes. At most
    ``depth`` items wait, so memory stays flat.
    """

    def __init__(self, depth: int = 8) -> None:
        self._items: queue.Queue[tuple[bytes | memoryview, bytearray | None] | None] = queue.Queue(
            depth
        )
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(depth):
            self._free.put(bytearray(_CHUNK))
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def _wait(self, action: Callable[[], Any]) -> Any:
        while not self._stop.is_set():
            try:
                return action()
            except (queue.Full, queue.Empty):
                continue
        raise _Stopped

    # --- the producer's side
    def buffer(self) -> bytearray:
        return cast(bytearray, self._wait(lambda: self._free.get(timeout=0.1)))

    def send(self, data: bytes | memoryview, pooled: bytearray | None = None) -> None:
        self._wait(lambda: self._items.put((data, pooled), timeout=0.1))

    def close(self) -> None:
        self._wait(lambda: self._items.put(None, timeout=0.1))

    # --- the consumer's side
    def drain(self, out: Any, producer: threading.Thread) -> None:
        """Write everything sent to ``out`` until the producer closes the pipe or fails."""
        try:
            while True:
                try:
                    item = self._items.get(timeout=0.1)
                except queue.Empty:
                    if not producer.is_alive():
                        break
                    continue
                if item is None:
                    break
                data, pooled = item
                if data:
                    out.write(data)
                if pooled is not None:
                    self._free.put(pooled)
        finally:
            self._stop.set()
            producer.join()
        if self.error is not None:
            raise self.error


class _Stream:
    """The tar stream into the pipe: small writes batched, file data in pooled buffers."""

    def __init__(self, out: _Pipe, notes: _Notes, progress: Callable[[int], None] | None) -> None:
        self._out = out
        self._buffer = bytearray()  # each zstd call costs; headers come in 512 bytes
        self._notes = notes
        self._progress = progress
        self.done = 0
        self._reported = 0

    def write(self, data: bytes | memoryview) -> None:
        if len(data) >= _CHUNK // 4:
            self.flush()
            self._out.send(data)
            return
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
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
            n = min(size, _CHUNK)
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
            xattrs = _xattrs(root_fd, volume, b".", self._notes)
            self.write(self._header(volume, b"", prefix, DIR, st.st_mode, st, xattrs=xattrs))
            while True:
                kind = spool.read(1)
                if kind in (b"", _VOLUME):
                    if kind:
                        spool.seek(-1, os.SEEK_CUR)
                    return
                name_len, payload_len = _FRAME.unpack(spool.read(_FRAME.size))
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
                if kind == _DIRECTORY:
                    stack.append(
                        (rel, self._directory(volume, prefix, rel, parts[-1], parent_fd, payload))
                    )
                elif kind == _FILE:
                    (size,) = _SIZE.unpack(payload)
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
                f"volume {volume.name}: {_text(rel or b'.')}: dropped its setuid/setgid bit"
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
        mode, uid, gid, mtime_ns = _META.unpack_from(payload)
        xattrs = _unpack_xattrs(payload, _META.size)
        fd = -1
        if parent_fd >= 0:
            try:
                fd = os.open(name, _DIR_OPEN, dir_fd=parent_fd)
            except OSError:
                fd = -1
        if fd < 0:
            self._notes.warn(
                f"volume {volume.name}: directory {_text(rel)} vanished during capture; "
                "stored as it was scanned, its files as zeros"
            )
        meta = _Meta(uid, gid, mtime_ns)
        self.write(self._header(volume, rel, prefix, DIR, mode, meta, xattrs=xattrs))
        return fd

    def _other(
        self, volume: VolumeSource, prefix: bytes, rel: bytes, kind: bytes, payload: bytes
    ) -> None:
        mode, uid, gid, mtime_ns = _META.unpack_from(payload)
        meta = _Meta(uid, gid, mtime_ns)
        tail = payload[_META.size :]
        if kind == _SYMLINK:
            self.write(self._header(volume, rel, prefix, SYM, 0o777, meta, linkname=tail))
        elif kind == _HARDLINK:
            self.write(self._header(volume, rel, prefix, LNK, mode & 0o1777, meta, linkname=tail))
        else:
            acls = _unpack_xattrs(payload, _META.size)
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
                    f"volume {volume.name}: file {_text(rel)} vanished during capture; "
                    f"stored as {size} zero bytes to keep the manifest's counts"
                )
                now = time.time_ns()
                self.write(
                    self._header(volume, rel, prefix, REG, 0o600, _Meta(0, 0, now), size=size)
                )
                self.zeros(size)
            else:
                xattrs = _xattrs(fd, volume, rel, self._notes)
                self.write(
                    self._header(volume, rel, prefix, REG, st.st_mode, st, size=size, xattrs=xattrs)
                )
                copied = self._copy(fd, size, sparse=st.st_blocks * 512 < min(size, st.st_size))
                if copied < size or os.fstat(fd).st_size != size:
                    self._notes.warn(
                        f"volume {volume.name}: file {_text(rel)} changed size during capture; "
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
                n = os.preadv(fd, [memoryview(buf)[: min(end - pos, _CHUNK)]], pos)
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


def write_archive(
    dest: Path,
    workload: dict[str, str],
    volumes: list[VolumeSource],
    *,
    progress: Callable[[int], None] | None = None,
    level: int = 3,
    threads: int = 0,
) -> WriteResult:
    """Capture ``volumes`` into a new format-2 archive at ``dest``.

    ``volumes`` must carry indexes ``0..n-1`` in order (else ``ValueError``).
    ``progress`` receives the file bytes streamed so far. The archive is written to
    ``dest`` + ``.partial``, fsynced and renamed, so ``dest`` is complete or absent;
    ``OSError`` from reading the trees or writing the file propagates after the
    partial file is removed. ``threads=-1`` compresses on every core.
    """
    if [v.index for v in volumes] != list(range(len(volumes))):
        raise ValueError("volume indexes must be 0..n-1 in order")
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    notes = _Notes()
    try:
        with tempfile.TemporaryFile(dir=dest.parent) as spool:
            counted = []
            for volume in volumes:
                spool.write(_VOLUME)
                counted.append((volume, _scan_volume(volume, spool, notes)))
            created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            manifest = build_manifest(workload, created, counted)
            manifest_bytes = encode_manifest(manifest)
            spool.seek(0)
            with open(partial, "wb", buffering=_CHUNK) as raw:
                hashing = _HashingFile(raw)
                cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
                pipe = _Pipe()

                def produce() -> None:
                    try:
                        stream = _Stream(pipe, notes, progress)
                        stream.write(
                            member_header(
                                MANIFEST_NAME.encode(),
                                REG,
                                size=len(manifest_bytes),
                                mtime_ns=time.time_ns(),
                            )
                        )
                        stream.write(manifest_bytes)
                        stream.pad(len(manifest_bytes))
                        for volume in volumes:
                            if spool.read(1) != _VOLUME:
                                raise RuntimeError("capture spool out of step")
                            stream.volume(volume, spool)
                        stream.end()
                        pipe.close()
                    except _Stopped:
                        pass
                    except BaseException as exc:  # raised again on the caller's thread
                        pipe.error = exc

                producer = threading.Thread(target=produce, name="archive-read", daemon=True)
                with cctx.stream_writer(
                    cast(IO[bytes], hashing), closefd=False, write_size=_CHUNK
                ) as zout:
                    producer.start()
                    pipe.drain(zout, producer)
                raw.flush()
                os.fsync(raw.fileno())
        os.replace(partial, dest)
        dir_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return WriteResult(
        path=dest,
        size=hashing.size,
        sha256=hashing.sha256.hexdigest(),
        manifest=manifest,
        warnings=notes.warnings(),
        skipped=list(notes.skipped),
    )
