"""The snapshot archive (SPEC section 5): a streaming writer and an untrusted reader.

An archive is one zstd frame holding a POSIX (pax) tar stream: ``manifest.json``
first, then ``volumes/<index>/...`` members that are regular files or directories.
``write_archive`` captures volume directories into that shape with flat memory and
moves the file into place only once it is complete and fsynced. ``read_archive``
is the one reader that import, restore and any future consumer use: it treats
every byte as hostile, validates each member before acting on it, and either
writes the volumes into caller-given staging directories or only verifies.

The reader must never call ``tarfile.extract``/``extractall``, never follow a
link, never join a member name into a path string, never read or allocate more
than a cap allows because a header said so, never write outside the staging
directories, and never let any exception but ``ArchiveInvalid`` out for a bad
archive. The writer must never leave a half-written archive under its final name.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import stat
import struct
import tarfile
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, NoReturn, Protocol, Self, cast

import zstandard

from moorage.errors import ArchiveInvalid

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
VOLUMES_DIR = "volumes"

DEFAULT_MAX_MEMBERS = 1_000_000
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_NAME_BYTES = 4096
DEFAULT_MAX_COMPONENT_BYTES = 255
DEFAULT_MAX_MANIFEST_BYTES = 1_048_576
DEFAULT_MAX_WINDOW_LOG = 27

_CHUNK = 1 << 20  # every read and write of file data
_BLOCK = tarfile.BLOCKSIZE
_TAR_BUFSIZE = 64 * 1024
_PROGRESS_EVERY = 1 << 20
_MAX_WARNINGS = 1000
_MODE_MASK = 0o777  # permission bits only: setuid, setgid and sticky are dropped
_CHOWN = os.geteuid() == 0  # only root can give files back to their owners


def _plain_id(value: int) -> bool:
    """A uid/gid the ustar field can hold; anything else (base-256 tricks) is left alone."""
    return isinstance(value, int) and 0 <= value < 8**7


_MAX_TRAILING_ZEROS = 8 << 20  # padding allowed after the end-of-archive marker
_MAX_ABS_MTIME = 1 << 40  # seconds; anything further out is a forged header

_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class VolumeSource:
    """One volume directory to capture, stored as ``volumes/<index>/``."""

    index: int
    name: str
    scope: str
    source: str
    path: Path


@dataclass(frozen=True)
class Limits:
    """Caps the reader enforces; ``max_bytes`` is ``MOORAGE_SNAPSHOT_MAX_BYTES``."""

    max_bytes: int
    max_members: int = DEFAULT_MAX_MEMBERS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_name_bytes: int = DEFAULT_MAX_NAME_BYTES
    max_component_bytes: int = DEFAULT_MAX_COMPONENT_BYTES
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    max_window_log: int = DEFAULT_MAX_WINDOW_LOG


@dataclass(frozen=True)
class WriteResult:
    path: Path
    size: int
    sha256: str
    manifest: dict[str, Any]
    warnings: list[str]


# ---------------------------------------------------------------------------
# Names: one rule set, used by the reader to reject and by the writer to skip.


def _component_problem(component: str, max_component_bytes: int) -> str | None:
    if component == "":
        return "an empty path component"
    if component in (".", ".."):
        return f"a {component!r} component"
    if "\\" in component:
        return "a backslash"
    for char in component:
        if unicodedata.category(char) == "Cc":
            return f"the control character U+{ord(char):04X}"
    try:
        encoded = component.encode("utf-8")
    except UnicodeEncodeError:
        return "bytes that are not UTF-8"
    if len(encoded) > max_component_bytes:
        return f"a component longer than {max_component_bytes} bytes"
    return None


def _format_ns(ns: int) -> str:
    sign = "-" if ns < 0 else ""
    seconds, fraction = divmod(abs(ns), 10**9)
    return f"{sign}{seconds}.{fraction:09d}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------
# Writer


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


class _Warnings:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < _MAX_WARNINGS:
            self.items.append(message)
        else:
            self.dropped += 1

    def result(self) -> list[str]:
        if self.dropped:
            return [*self.items, f"... and {self.dropped} more warnings"]
        return list(self.items)


_SPOOL_VOLUME = b"V"
_SPOOL_DIR = b"D"
_SPOOL_FILE = b"F"


def _special_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _scan_volume(volume: VolumeSource, spool: IO[bytes], warnings: _Warnings) -> tuple[int, int]:
    """First pass: list what will be captured (in archive order) and count it."""
    files = total = 0
    stack = [(*_listing(os.open(volume.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)), "", 0)]
    try:
        while stack:
            dir_fd, entries, prefix, depth = stack[-1]
            if not entries:
                stack.pop()
                os.close(dir_fd)
                continue
            entry = entries.pop()
            rel = prefix + entry.name
            what = f"volume {volume.name}: skipped {rel!r}"
            problem = _component_problem(entry.name, DEFAULT_MAX_COMPONENT_BYTES)
            if problem is not None:
                warnings.add(f"{what}: its name has {problem}")
                continue
            name_bytes = len(f"{VOLUMES_DIR}/{volume.index}/{rel}/".encode())
            if name_bytes > DEFAULT_MAX_NAME_BYTES:
                warnings.add(f"{what}: its name is over {DEFAULT_MAX_NAME_BYTES} bytes")
                continue
            try:
                if entry.is_symlink():
                    warnings.add(f"volume {volume.name}: skipped symlink {rel}")
                elif depth + 1 > DEFAULT_MAX_DEPTH:
                    warnings.add(f"{what}: deeper than {DEFAULT_MAX_DEPTH} levels")
                elif entry.is_dir(follow_symlinks=False):
                    try:
                        child = os.open(entry.name, _DIR_OPEN, dir_fd=dir_fd)
                    except OSError as exc:
                        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                            raise
                        warnings.add(f"{what}: it stopped being a directory during capture")
                        continue
                    child_fd, child_entries = _listing(child)
                    encoded = rel.encode()
                    spool.write(_SPOOL_DIR + struct.pack(">H", len(encoded)) + encoded)
                    stack.append((child_fd, child_entries, rel + "/", depth + 1))
                elif entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    encoded = rel.encode()
                    spool.write(_SPOOL_FILE + struct.pack(">HQ", len(encoded), size) + encoded)
                    files += 1
                    total += size
                else:
                    kind = _special_kind(entry.stat(follow_symlinks=False).st_mode)
                    warnings.add(f"volume {volume.name}: skipped {kind} {rel}")
            except FileNotFoundError:
                continue  # removed while we looked: simply not part of the snapshot
    finally:
        for dir_fd, _, _, _ in stack:
            os.close(dir_fd)
    return files, total


def _listing(dir_fd: int) -> tuple[int, list[os.DirEntry[str]]]:
    """An open directory and its entries, sorted so the last is the next to visit."""
    try:
        with os.scandir(dir_fd) as it:
            return dir_fd, sorted(it, key=lambda e: e.name, reverse=True)
    except BaseException:
        os.close(dir_fd)
        raise


_USTAR_MAX = 8**11  # sizes and mtimes from here on go into pax records


_ID_MAX = 8**7  # ustar's uid/gid fields; larger ids are stored as 0 (root)


def _ustar_block(
    name: bytes, kind: bytes, size: int, mode: int, mtime: int, uid: int = 0, gid: int = 0
) -> bytes:
    block = b"".join(
        (
            name[:100].ljust(100, b"\0"),
            b"%07o\0" % mode,
            b"%07o\0" % (uid if 0 <= uid < _ID_MAX else 0),
            b"%07o\0" % (gid if 0 <= gid < _ID_MAX else 0),
            b"%011o\0" % size,
            b"%011o\0" % mtime,
            b" " * 8,  # the checksum, counted as spaces
            kind,
            bytes(100),  # linkname
            tarfile.POSIX_MAGIC,
            bytes(64),  # uname, gname
            b"0000000\0" * 2,  # devmajor, devminor
            bytes(167),  # prefix and the unused tail
        )
    )
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def _pax_record(keyword: str, value: str) -> bytes:
    body = f" {keyword}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _tar_header(
    name: str,
    kind: bytes,
    *,
    size: int = 0,
    mode: int = 0o644,
    mtime_ns: int = 0,
    uid: int = 0,
    gid: int = 0,
) -> bytes:
    """One member's header, preceded by a pax header when ustar fields cannot hold it.

    Built by hand rather than with ``TarInfo.tobuf`` (which costs ~0.2 ms a member):
    the shape is fixed, and the reader and ``tarfile`` both parse it in the tests.
    """
    if kind == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    encoded = name.encode()
    records = []
    if len(encoded) > 100 or not name.isascii():
        records.append(_pax_record("path", name))
        encoded = name.encode("ascii", "replace")
    if size >= _USTAR_MAX:
        records.append(_pax_record("size", str(size)))
    seconds = mtime_ns // 10**9
    if mtime_ns % 10**9 or not 0 <= seconds < _USTAR_MAX:
        records.append(_pax_record("mtime", _format_ns(mtime_ns)))
    clamped = min(max(seconds, 0), _USTAR_MAX - 1)
    header = _ustar_block(
        encoded, kind, size if size < _USTAR_MAX else 0, mode & _MODE_MASK, clamped, uid, gid
    )
    if not records:
        return header
    payload = b"".join(records)
    pax = _ustar_block(b"././@PaxHeader", tarfile.XHDTYPE, len(payload), 0o644, clamped)
    return pax + payload + bytes(-len(payload) % _BLOCK) + header


class _ArchiveWriter:
    def __init__(
        self,
        out: Any,
        warnings: _Warnings,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._out = out
        self._buffer = bytearray()  # small writes are batched: each zstd call costs
        self._warnings = warnings
        self._progress = progress
        self.done = 0
        self._reported = 0

    def write(self, data: bytes) -> None:
        if len(data) >= _CHUNK // 4:
            self.flush()
            self._out.write(data)
            return
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._out.write(self._buffer)
            self._buffer.clear()

    def header(self, data: bytes) -> None:
        self.write(data)

    def file(self, name: str, data: bytes, mtime_ns: int) -> None:
        self.write(_tar_header(name, tarfile.REGTYPE, size=len(data), mtime_ns=mtime_ns))
        self.write(data)
        self._pad(len(data))

    def _pad(self, size: int) -> None:
        if size % _BLOCK:
            self.write(bytes(_BLOCK - size % _BLOCK))

    def end(self) -> None:
        self.write(bytes(2 * _BLOCK))
        self.flush()
        self.report(final=True)

    def report(self, *, final: bool = False) -> None:
        if self._progress is None or self.done == self._reported:
            return
        if final or self._reported == 0 or self.done - self._reported >= _PROGRESS_EVERY:
            self._reported = self.done
            self._progress(self.done)

    def volume(self, volume: VolumeSource, spool: IO[bytes]) -> None:
        """Second pass: stream every spooled entry of one volume, exactly as counted."""
        root_fd = os.open(volume.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack: list[tuple[str, int]] = [("", root_fd)]
        prefix = f"{VOLUMES_DIR}/{volume.index}/"
        try:
            st = os.fstat(root_fd)
            self.header(
                _tar_header(
                    prefix,
                    tarfile.DIRTYPE,
                    mode=st.st_mode,
                    mtime_ns=st.st_mtime_ns,
                    uid=st.st_uid,
                    gid=st.st_gid,
                )
            )
            while True:
                kind = spool.read(1)
                if kind in (b"", _SPOOL_VOLUME):
                    if kind:
                        spool.seek(-1, os.SEEK_CUR)
                    return
                if kind == _SPOOL_DIR:
                    (length,) = struct.unpack(">H", spool.read(2))
                    size = -1
                else:
                    length, size = struct.unpack(">HQ", spool.read(10))
                rel = spool.read(length).decode()
                parts = rel.split("/")
                while len(stack) > len(parts) or stack[-1][0] != "/".join(parts[: len(stack) - 1]):
                    _, fd = stack.pop()
                    if fd >= 0:
                        os.close(fd)
                if stack[-1][0] != "/".join(parts[:-1]):
                    raise RuntimeError(f"capture spool out of order at {rel!r}")
                parent_fd = stack[-1][1]
                if size < 0:
                    fd = self._directory(volume, prefix, rel, parts[-1], parent_fd)
                    stack.append((rel, fd))
                else:
                    self._file(volume, prefix, rel, parts[-1], parent_fd, size)
        finally:
            for _, fd in stack:
                if fd >= 0:
                    os.close(fd)

    def _directory(
        self, volume: VolumeSource, prefix: str, rel: str, name: str, parent_fd: int
    ) -> int:
        fd = -1
        mode, mtime_ns, uid, gid = 0o700, time.time_ns(), 0, 0
        if parent_fd >= 0:
            try:
                fd = os.open(name, _DIR_OPEN, dir_fd=parent_fd)
                st = os.fstat(fd)
                mode, mtime_ns, uid, gid = st.st_mode, st.st_mtime_ns, st.st_uid, st.st_gid
            except OSError:
                fd = -1
        if fd < 0:
            self._warnings.add(
                f"volume {volume.name}: directory {rel} vanished during capture; stored empty"
            )
        self.header(
            _tar_header(
                prefix + rel, tarfile.DIRTYPE, mode=mode, mtime_ns=mtime_ns, uid=uid, gid=gid
            )
        )
        return fd

    def _file(
        self, volume: VolumeSource, prefix: str, rel: str, name: str, parent_fd: int, size: int
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
        if fd < 0:
            self._warnings.add(
                f"volume {volume.name}: file {rel} vanished during capture; "
                f"stored as {size} zero bytes to keep the manifest's counts"
            )
            mode, mtime_ns, uid, gid = 0o600, time.time_ns(), 0, 0
        else:
            mode, mtime_ns, uid, gid = st.st_mode, st.st_mtime_ns, st.st_uid, st.st_gid
        try:
            self.header(
                _tar_header(
                    prefix + rel,
                    tarfile.REGTYPE,
                    size=size,
                    mode=mode,
                    mtime_ns=mtime_ns,
                    uid=uid,
                    gid=gid,
                )
            )
            remaining = size
            while remaining and fd >= 0:
                chunk = os.read(fd, min(remaining, _CHUNK))
                if not chunk:
                    break
                self.write(chunk)
                remaining -= len(chunk)
                self.done += len(chunk)
                self.report()
            if fd >= 0 and (remaining or os.read(fd, 1)):
                self._warnings.add(
                    f"volume {volume.name}: file {rel} changed size during capture; "
                    f"stored its first {size} bytes"
                    + (f" ({remaining} of them zeros)" if remaining else "")
                )
            while remaining:
                chunk_size = min(remaining, _CHUNK)
                self.write(bytes(chunk_size))
                remaining -= chunk_size
                self.done += chunk_size
                self.report()
            self._pad(size)
        finally:
            if fd >= 0:
                os.close(fd)


def write_archive(
    dest: Path,
    workload: dict[str, str],
    volumes: list[VolumeSource],
    *,
    progress: Callable[[int], None] | None = None,
    level: int = 3,
    threads: int = 0,
) -> WriteResult:
    """Capture ``volumes`` into a new archive at ``dest``.

    A first pass counts files and bytes for the manifest; the second streams them
    in 1 MiB chunks, writing exactly the counted bytes (a file that changed size
    meanwhile is truncated or zero-padded, with a warning). Symlinks, special files
    and names the reader would refuse are skipped and listed in ``warnings``.
    ``progress`` receives the volume bytes streamed so far. The archive is written
    to ``dest`` + ``.partial``, fsynced and renamed, so ``dest`` is complete or absent.
    ``threads=-1`` compresses on every core.
    """
    if [v.index for v in volumes] != list(range(len(volumes))):
        raise ValueError("volume indexes must be 0..n-1 in order")
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    warnings = _Warnings()
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "workload": {key: workload[key] for key in ("id", "name", "kind")},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "volumes": [],
    }
    try:
        with tempfile.TemporaryFile(dir=dest.parent) as spool:
            for volume in volumes:
                spool.write(_SPOOL_VOLUME + struct.pack(">I", volume.index))
                files, total = _scan_volume(volume, spool, warnings)
                manifest["volumes"].append(
                    {
                        "index": volume.index,
                        "name": volume.name,
                        "scope": volume.scope,
                        "source": volume.source,
                        "files": files,
                        "bytes": total,
                    }
                )
            manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
            if len(manifest_bytes) > DEFAULT_MAX_MANIFEST_BYTES:
                raise ValueError("the manifest is larger than readers accept")
            spool.seek(0)
            with open(partial, "wb", buffering=_CHUNK) as raw:
                hashing = _HashingFile(raw)
                cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
                with cctx.stream_writer(
                    cast(IO[bytes], hashing), closefd=False, write_size=_CHUNK
                ) as zout:
                    writer = _ArchiveWriter(zout, warnings, progress)
                    writer.file(MANIFEST_NAME, manifest_bytes, time.time_ns())
                    for volume in volumes:
                        if spool.read(1) != _SPOOL_VOLUME:
                            raise RuntimeError("capture spool out of step")
                        spool.read(4)
                        writer.volume(volume, spool)
                    writer.end()
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
        warnings=warnings.result(),
    )


# ---------------------------------------------------------------------------
# Reader


def _fail(message: str) -> NoReturn:
    raise ArchiveInvalid(message)


class _EndOfArchive(Exception):
    """A zero block where a member header should start: the tar stream's end marker."""


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_MAX_BLOCK = 128 * 1024
_ZSTD_BLOCKS_PER_FEED = 8  # so one decompress call yields at most 1 MiB
_ZSTD_READ = 256 * 1024


class _ZstdFrame:
    """Decompressed bytes of exactly one zstd frame, read from an untrusted source.

    It walks the frame's block headers itself and feeds the decompressor a few
    whole blocks at a time: a block never expands beyond 128 KiB, so no call can
    produce more than 1 MiB, however small and hostile the input. It knows where
    the frame ends, so a truncated frame and any byte after it are errors.
    """

    def __init__(self, source: BinaryIO, max_window_log: int) -> None:
        self._source = source
        self._max_window = 1 << max_window_log
        dctx = zstandard.ZstdDecompressor(max_window_size=self._max_window)
        self._dobj = dctx.decompressobj()
        self._buf = bytearray()
        self._pos = 0
        self._out = b""
        self._out_pos = 0
        self._started = False
        self._last_block = False
        self._checksum = False
        self.done = False
        self.compressed = 0

    def _fill(self, n: int) -> bool:
        """Make ``n`` unconsumed bytes available; False when the source ends first."""
        while len(self._buf) - self._pos < n:
            chunk = self._source.read(_ZSTD_READ)
            if not chunk:
                return False
            self._buf += chunk
        return True

    def _need(self, n: int) -> None:
        if not self._fill(n):
            _fail(
                f"the zstd stream is truncated: it ends after {self.compressed + len(self._buf)} "
                "bytes, inside its frame"
            )

    def _header(self) -> None:
        if not self._fill(4):
            if not self._buf:
                _fail("the archive is empty")
            _fail("the archive is not a zstd stream")
        if bytes(self._buf[:4]) != _ZSTD_MAGIC:
            _fail("the archive is not a zstd stream (bad magic number)")
        self._need(5)
        descriptor = self._buf[4]
        fcs_flag = descriptor >> 6
        single_segment = bool(descriptor & 0x20)
        self._checksum = bool(descriptor & 0x04)
        if descriptor & 0x03:
            _fail("the zstd frame needs a dictionary, which the format never uses")
        fcs_size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
        length = 5 + (0 if single_segment else 1) + fcs_size
        self._need(length)
        if single_segment:
            raw = bytes(self._buf[5 : 5 + fcs_size])
            window = int.from_bytes(raw, "little") + (256 if fcs_size == 2 else 0)
        else:
            descriptor_byte = self._buf[5]
            window_log = 10 + (descriptor_byte >> 3)
            window = (1 << window_log) + ((1 << window_log) >> 3) * (descriptor_byte & 7)
        if window > self._max_window:
            _fail(
                f"the zstd window ({window} bytes) is larger than the cap of "
                f"{self._max_window} bytes"
            )
        self._pos = length
        self._started = True

    def _step(self) -> bytes:
        if self._pos:
            del self._buf[: self._pos]
            self.compressed += self._pos
            self._pos = 0
        if not self._started:
            self._header()
        blocks = 0
        while blocks < _ZSTD_BLOCKS_PER_FEED and not self._last_block:
            self._need(3)
            header = int.from_bytes(self._buf[self._pos : self._pos + 3], "little")
            self._last_block = bool(header & 1)
            block_type = (header >> 1) & 3
            block_size = header >> 3
            if block_type == 3:
                _fail("the zstd stream has a block of the reserved type")
            if block_size > _ZSTD_MAX_BLOCK:
                _fail("the zstd stream has a block larger than the format allows")
            payload = 1 if block_type == 1 else block_size
            self._need(3 + payload)
            self._pos += 3 + payload
            blocks += 1
        if self._last_block and self._checksum:
            self._need(4)
            self._pos += 4
        try:
            out = self._dobj.decompress(bytes(self._buf[: self._pos]))
        except zstandard.ZstdError as exc:
            _fail(f"the zstd stream is corrupt: {exc}")
        if self._last_block:
            if not self._dobj.eof or self._dobj.unused_data:
                _fail("the zstd frame does not end where its last block says")
            self.done = True
        return out

    def read(self, size: int = -1) -> bytes:
        while self._out_pos >= len(self._out):
            if self.done:
                return b""
            self._out = self._step()
            self._out_pos = 0
        start = self._out_pos
        end = len(self._out) if size < 0 else min(len(self._out), start + size)
        self._out_pos = end
        if start == 0 and end == len(self._out):
            return self._out
        return self._out[start:end]

    def finish(self) -> None:
        """Require the frame to be complete and nothing to follow it."""
        if not self.done or self._out_pos < len(self._out):
            _fail("the archive has data after the end of the tar stream")
        if len(self._buf) > self._pos or self._source.read(1):
            _fail("the archive has trailing bytes after its zstd frame")


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...
    def tell(self) -> int: ...


_REJECTED_TYPES = {
    tarfile.SYMTYPE: "a symlink",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a GNU sparse file",
    tarfile.GNUTYPE_LONGNAME: "a GNU long-name header",
    tarfile.GNUTYPE_LONGLINK: "a GNU long-link header",
    tarfile.XGLTYPE: "a global pax header",
    tarfile.SOLARIS_XHDTYPE: "a Solaris extended header",
}
_PAX_APPLIED = {"path", "size", "mtime"}
_PAX_IGNORED = {"atime", "ctime", "uid", "gid", "uname", "gname", "comment"}
_PAX_IGNORED_PREFIXES = ("SCHILY.", "LIBARCHIVE.")
_PAX_UTF8 = "ISO-IR 10646 2000 UTF-8"
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)
_PAX_MTIME = re.compile(r"(-?)([0-9]{1,15})(?:\.([0-9]{1,30}))?", re.ASCII)
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}", re.ASCII)


def _blocks(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _field_text(raw: bytes) -> str:
    end = raw.find(b"\0")
    return (raw if end < 0 else raw[:end]).decode("utf-8")


def _parse_pax(payload: bytes, offset: int) -> dict[str, str]:
    """Parse one extended header strictly: exact records, UTF-8, no repeated keyword."""
    records: dict[str, str] = {}
    pos = 0
    where = f"the pax header at offset {offset}"
    while pos < len(payload):
        space = payload.find(b" ", pos, pos + 12)
        digits = payload[pos:space] if space > pos else b""
        if not digits.isdigit() or digits.startswith(b"0"):
            _fail(f"{where} is malformed (bad record length)")
        end = pos + int(digits)
        if end > len(payload) or end <= space + 2 or payload[end - 1 : end] != b"\n":
            _fail(f"{where} is malformed (a record overruns)")
        keyword_raw, eq, value_raw = payload[space + 1 : end - 1].partition(b"=")
        if not eq or not keyword_raw:
            _fail(f"{where} is malformed (a record has no keyword)")
        try:
            keyword = keyword_raw.decode("utf-8")
            value = value_raw.decode("utf-8")
        except UnicodeDecodeError:
            _fail(f"{where} holds text that is not UTF-8")
        if keyword in records:
            _fail(f"{where} sets {keyword!r} twice")
        if keyword.startswith("GNU.sparse."):
            _fail(f"{where} describes a sparse member ({keyword}); sparse members are refused")
        if keyword == "linkpath":
            _fail(f"{where} sets a link target; links are refused")
        if keyword == "hdrcharset" and value != _PAX_UTF8:
            _fail(f"{where} declares names that are not UTF-8")
        if not (
            keyword in _PAX_APPLIED
            or keyword in _PAX_IGNORED
            or keyword == "hdrcharset"
            or keyword.startswith(_PAX_IGNORED_PREFIXES)
        ):
            _fail(f"{where} uses the unsupported keyword {keyword!r}")
        records[keyword] = value
        pos = end
    return records


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo whose parsing refuses, before reading any payload, what the format forbids.

    ``tarfile`` is used for header checksums and numeric fields only: extended
    headers are parsed here, strictly and with a size cap, because ``tarfile``
    would read a pax or GNU header of any claimed size into memory, recurse on
    chained headers and expand sparse maps, and it stops silently at a bad header.
    """

    max_extended = 64 * 1024
    raw_name = ""
    mtime_ns = 0

    @classmethod
    def fromtarfile(cls, tarfile: tarfile.TarFile) -> Self:
        return cls._read_member(tarfile, None)

    @classmethod
    def _read_member(cls, tf: tarfile.TarFile, pax: dict[str, str] | None) -> Self:
        stream: _Readable = tf.fileobj
        start = stream.tell()
        buf = stream.read(_BLOCK)
        if not buf and pax is None:
            _fail("the tar stream ends without its end-of-archive marker (truncated)")
        if len(buf) < _BLOCK:
            _fail(f"the tar stream is truncated inside the header at offset {start}")
        if not buf.strip(b"\0"):
            if pax is not None:
                _fail(f"the pax header before offset {start} is not followed by a member")
            raise _EndOfArchive
        try:
            info = cls.frombuf(buf, "utf-8", "strict")
            name = _field_text(buf[0:100])
            prefix = _field_text(buf[345:500])
        except (tarfile.HeaderError, UnicodeError, ValueError) as exc:
            _fail(f"corrupt tar header at offset {start}: {exc}")
        if buf[257:265] != tarfile.POSIX_MAGIC:
            _fail(f"the header at offset {start} is not a POSIX ustar header")
        if info.size < 0:
            _fail(f"the header at offset {start} claims a negative size")
        raw_name = f"{prefix}/{name}" if prefix else name
        if pax is not None and "path" in pax:
            raw_name = pax["path"]
        info.offset = start
        if info.type == tarfile.XHDTYPE:
            if pax is not None:
                _fail(f"two pax headers in a row at offset {start}")
            if info.size > cls.max_extended:
                _fail(
                    f"the pax header at offset {start} claims {info.size} bytes, "
                    f"over the cap of {cls.max_extended}"
                )
            payload = stream.read(_blocks(info.size))
            if len(payload) < _blocks(info.size):
                _fail(f"the tar stream is truncated inside the pax header at offset {start}")
            member = cls._read_member(tf, _parse_pax(payload[: info.size], start))
            member.offset = start
            return member
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
            kind = _REJECTED_TYPES.get(info.type, f"of the unsupported type {info.type!r}")
            _fail(f"member {raw_name!r} is {kind}; only regular files and directories are allowed")
        info.raw_name = raw_name
        info.mtime_ns = int(info.mtime) * 10**9
        if pax is not None:
            cls._apply_pax(info, pax, raw_name)
        if abs(info.mtime_ns) > _MAX_ABS_MTIME * 10**9:
            _fail(f"member {raw_name!r} has an implausible mtime")
        if info.isdir() and info.size:
            _fail(f"member {raw_name!r} is a directory that claims {info.size} bytes of data")
        info.offset_data = stream.tell()
        tf.offset = info.offset_data + (_blocks(info.size) if info.isreg() else 0)
        return info

    @classmethod
    def _apply_pax(cls, info: _StrictTarInfo, pax: dict[str, str], raw_name: str) -> None:
        if "size" in pax:
            if not _DIGITS.fullmatch(pax["size"]):
                _fail(f"member {raw_name!r}: pax size {pax['size']!r} is not a decimal number")
            size = int(pax["size"])
            if info.size not in (0, size):
                _fail(
                    f"member {raw_name!r}: pax size {size} conflicts with the header's {info.size}"
                )
            info.size = size
        if "mtime" in pax:
            match = _PAX_MTIME.fullmatch(pax["mtime"])
            if match is None:
                _fail(f"member {raw_name!r}: pax mtime {pax['mtime']!r} is not a number")
            sign, seconds, fraction = match.groups()
            ns = int(seconds) * 10**9 + int((fraction or "")[:9].ljust(9, "0"))
            info.mtime_ns = -ns if sign else ns
        if "path" in pax:
            info.name = raw_name.rstrip("/") if info.isdir() else raw_name
        info.pax_headers = dict(pax)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _fail(f"manifest.json repeats the key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    _fail(f"manifest.json contains {name}, which is not JSON")


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _parse_manifest(data: bytes, limits: Limits) -> dict[str, Any]:
    try:
        manifest = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        _fail("manifest.json is nested too deeply")
    except (ValueError, UnicodeError) as exc:
        _fail(f"manifest.json is not valid JSON: {exc}")
    if not isinstance(manifest, dict):
        _fail("manifest.json is not a JSON object")
    if type(manifest.get("format")) is not int or manifest["format"] != FORMAT_VERSION:
        _fail(f"manifest.json has format {manifest.get('format')!r}; only 1 is understood")
    workload = manifest.get("workload")
    if not isinstance(workload, dict) or not all(
        isinstance(workload.get(key), str) for key in ("id", "name", "kind")
    ):
        _fail("manifest.json: workload must be an object with string id, name and kind")
    if not isinstance(manifest.get("created_at"), str):
        _fail("manifest.json: created_at must be a string")
    volumes = manifest.get("volumes")
    if not isinstance(volumes, list):
        _fail("manifest.json: volumes must be a list")
    names: set[str] = set()
    for position, volume in enumerate(volumes):
        if not isinstance(volume, dict):
            _fail(f"manifest.json: volume {position} is not an object")
        index = volume.get("index")
        if type(index) is not int or index != position:
            _fail(
                f"manifest.json: the volume at position {position} has index {index!r}; "
                "indexes must be exactly 0..n-1 in order"
            )
        for key in ("name", "scope", "source"):
            if not isinstance(volume.get(key), str):
                _fail(f"manifest.json: volume {position} {key} must be a string")
        for key in ("files", "bytes"):
            if not _is_count(volume.get(key)):
                _fail(f"manifest.json: volume {position} {key} must be a non-negative integer")
        if volume["name"] in names:
            _fail(f"manifest.json: the volume name {volume['name']!r} appears twice")
        names.add(volume["name"])
    declared_bytes = sum(v["bytes"] for v in volumes)
    if declared_bytes > limits.max_bytes:
        _fail(f"manifest.json declares {declared_bytes} bytes, over the cap of {limits.max_bytes}")
    declared_files = sum(v["files"] for v in volumes)
    if declared_files > limits.max_members:
        _fail(
            f"manifest.json declares {declared_files} files, over the cap of {limits.max_members}"
        )
    return manifest


@dataclass
class _Dir:
    """An open directory on the way down to the current member."""

    name: str
    fd: int  # -1 when only verifying
    mode: int | None = None
    mtime_ns: int | None = None
    owner: tuple[int, int] | None = None
    children: dict[str, bool] = field(default_factory=dict)  # name -> is a directory


@dataclass
class _Volume:
    index: int
    name: str
    stack: list[_Dir]
    root_declared: bool = False
    files: int = 0
    bytes: int = 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _Reader:
    def __init__(
        self,
        source: BinaryIO,
        limits: Limits,
        roots: dict[int, int] | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._limits = limits
        self._roots = roots
        self._progress = progress
        self._frame = _ZstdFrame(source, limits.max_window_log)
        self._members = 0
        self._total = 0
        self._reported = 0
        self._manifest: dict[str, Any] = {}
        self._volumes: dict[int, _Volume] = {}
        self._current: _Volume | None = None
        self._finished: set[int] = set()
        self._volumes_dir_seen = False
        # Staged data must be durable before restore swaps it in: one syncfs per
        # filesystem at the end where the platform has it, else an fsync per entry.
        self._fsync_each = roots is not None and _libc() is None

    def run(self) -> dict[str, Any]:
        max_extended = max(64 * 1024, 2 * self._limits.max_name_bytes + 4096)

        class _LimitedTarInfo(_StrictTarInfo):
            pass

        _LimitedTarInfo.max_extended = max_extended
        try:
            tf = tarfile.open(
                fileobj=cast(Any, self._frame),  # it only needs read()
                mode="r|",
                bufsize=_TAR_BUFSIZE,
                tarinfo=_LimitedTarInfo,
                encoding="utf-8",
                errors="strict",
            )
        except _EndOfArchive:
            _fail("the archive holds no manifest.json")
        try:
            stream: _Readable = tf.fileobj
            try:
                while True:
                    try:
                        member = tf.next()
                    except tarfile.ReadError as exc:
                        _fail(f"the tar stream ends inside a member's padding ({exc})")
                    members = getattr(tf, "members", None)
                    if isinstance(members, list):
                        members.clear()  # tarfile keeps every member otherwise
                    if member is None:
                        _fail("the tar stream ends without its end-of-archive marker")
                    self._member(stream, cast(_StrictTarInfo, member))
            except _EndOfArchive:
                pass
            if not self._manifest:
                _fail("the archive holds no manifest.json")
            self._drain(stream)
            self._frame.finish()
            self._close_all()
        except BaseException:
            self._abandon()
            raise
        finally:
            tf.close()
        self._check_counts()
        if self._roots is not None and not self._fsync_each:
            _make_durable(list(self._roots.values()))
        self._report(final=True)
        return self._manifest

    def _drain(self, stream: _Readable) -> None:
        """After the first zero block, only zero padding may follow (at least one more block)."""
        zeros = _BLOCK
        while chunk := stream.read(_TAR_BUFSIZE):
            if chunk.strip(b"\0"):
                _fail(
                    "the tar stream has data after its end-of-archive marker "
                    "(a corrupt header or a hidden member)"
                )
            zeros += len(chunk)
            if zeros > _MAX_TRAILING_ZEROS:
                _fail("the tar stream has more padding after its end than any writer makes")
        if zeros < 2 * _BLOCK:
            _fail("the tar stream's end-of-archive marker is incomplete (truncated)")

    def _member(self, stream: _Readable, member: _StrictTarInfo) -> None:
        self._members += 1
        if self._members > self._limits.max_members:
            _fail(f"the archive has more than {self._limits.max_members} members")
        if not self._manifest:
            self._read_manifest(stream, member)
            return
        if member.isdir() and member.raw_name in (VOLUMES_DIR, VOLUMES_DIR + "/"):
            # What tar makes of the tree; it carries nothing, so it is allowed once.
            if self._volumes_dir_seen:
                _fail(f"member {member.raw_name!r} appears twice")
            self._volumes_dir_seen = True
            return
        index, parts = self._path(member)
        volume = self._enter(index)
        if not parts:
            if not member.isdir():
                _fail(f"member {member.raw_name!r}: a volume root must be a directory")
            if volume.root_declared:
                _fail(f"member {member.raw_name!r} appears twice")
            volume.root_declared = True
            volume.stack[0].mode = member.mode & _MODE_MASK
            volume.stack[0].mtime_ns = member.mtime_ns
            volume.stack[0].owner = (member.uid, member.gid)
            return
        parent = self._descend(volume, parts[:-1], member.raw_name)
        leaf = parts[-1]
        existing = parent.children.get(leaf)
        if existing is not None:
            if existing and member.isdir():
                _fail(f"member {member.raw_name!r}: the directory appears twice")
            if existing:
                _fail(f"member {member.raw_name!r}: a file where a directory already is")
            if member.isdir():
                _fail(f"member {member.raw_name!r}: a directory where a file already is")
            _fail(f"member {member.raw_name!r}: the file appears twice")
        parent.children[leaf] = member.isdir()
        if member.isdir():
            fd = -1
            if parent.fd >= 0:
                os.mkdir(leaf, 0o700, dir_fd=parent.fd)
                fd = os.open(leaf, _DIR_OPEN, dir_fd=parent.fd)
            volume.stack.append(
                _Dir(leaf, fd, member.mode & _MODE_MASK, member.mtime_ns, (member.uid, member.gid))
            )
        else:
            self._file(stream, member, volume, parent, leaf)

    def _read_manifest(self, stream: _Readable, member: _StrictTarInfo) -> None:
        name = member.raw_name.removesuffix("/") if member.isdir() else member.raw_name
        if name != MANIFEST_NAME:
            _fail(f"the first member must be {MANIFEST_NAME}, not {member.raw_name!r}")
        if not member.isreg():
            _fail(f"{MANIFEST_NAME} must be a regular file")
        if member.size > self._limits.max_manifest_bytes:
            _fail(
                f"{MANIFEST_NAME} is {member.size} bytes, over the cap of "
                f"{self._limits.max_manifest_bytes}"
            )
        data = stream.read(member.size)
        if len(data) != member.size:
            _fail(f"the stream ends inside {MANIFEST_NAME}")
        manifest = _parse_manifest(data, self._limits)
        count = len(manifest["volumes"])
        if self._roots is not None and set(self._roots) != set(range(count)):
            _fail(
                f"the archive holds volumes {list(range(count))} but staging directories "
                f"were given for {sorted(self._roots)}"
            )
        for volume in manifest["volumes"]:
            index = volume["index"]
            root_fd = -1 if self._roots is None else self._roots[index]
            self._volumes[index] = _Volume(index, volume["name"], [_Dir("", root_fd)])
        self._manifest = manifest

    def _path(self, member: _StrictTarInfo) -> tuple[int, list[str]]:
        """Validate a member's name; answer its volume index and path below the volume."""
        raw = member.raw_name
        limits = self._limits
        shown = repr(raw)
        try:
            name_bytes = len(raw.encode("utf-8"))
        except UnicodeEncodeError:
            _fail(f"member {shown}: its name is not UTF-8")
        if name_bytes > limits.max_name_bytes:
            _fail(f"member {shown[:80]}...: its name is over {limits.max_name_bytes} bytes")
        name = raw
        if member.isdir() and name.endswith("/"):
            name = name[:-1]
        if name.endswith("/"):
            what = "directory" if member.isdir() else "file"
            _fail(f"member {shown}: a trailing slash on a {what} name")
        if name.startswith("/"):
            _fail(f"member {shown}: absolute names are refused")
        parts = name.split("/")
        for part in parts:
            problem = _component_problem(part, limits.max_component_bytes)
            if problem is not None:
                _fail(f"member {shown}: its name has {problem}")
        if parts[0] != VOLUMES_DIR or len(parts) < 2:
            _fail(f"member {shown} is outside {VOLUMES_DIR}/<index>/")
        if not _INDEX.fullmatch(parts[1]):
            _fail(f"member {shown}: {parts[1]!r} is not a volume index")
        index = int(parts[1])
        if index not in self._volumes:
            _fail(f"member {shown}: volume {index} is not in the manifest")
        below = parts[2:]
        if len(below) > limits.max_depth:
            _fail(f"member {shown}: deeper than {limits.max_depth} levels")
        return index, below

    def _enter(self, index: int) -> _Volume:
        if self._current is not None and self._current.index == index:
            return self._current
        if index in self._finished:
            _fail(f"members of volume {index} are not contiguous")
        if self._current is not None:
            self._leave(self._current)
        self._current = self._volumes[index]
        return self._current

    def _leave(self, volume: _Volume) -> None:
        while len(volume.stack) > 1:
            self._close(volume.stack.pop())
        self._finished.add(volume.index)

    def _descend(self, volume: _Volume, parents: list[str], raw: str) -> _Dir:
        stack = volume.stack
        common = 0
        while (
            common < len(parents)
            and common + 1 < len(stack)
            and stack[common + 1].name == parents[common]
        ):
            common += 1
        while len(stack) > common + 1:
            self._close(stack.pop())
        if common < len(parents):
            missing = "/".join(parents[: common + 1])
            kind = stack[-1].children.get(parents[common])
            if kind is None:
                _fail(f"member {raw!r}: its directory {missing!r} is not in the archive before it")
            if not kind:
                _fail(f"member {raw!r}: {missing!r} is a file, not a directory")
            _fail(
                f"member {raw!r}: directory {missing!r} was already finished; "
                "a directory's members must be contiguous"
            )
        return stack[-1]

    def _file(
        self,
        stream: _Readable,
        member: _StrictTarInfo,
        volume: _Volume,
        parent: _Dir,
        leaf: str,
    ) -> None:
        raw, size = member.raw_name, member.size
        if self._total + size > self._limits.max_bytes:
            _fail(
                f"member {raw!r} ({size} bytes) takes the archive over the cap of "
                f"{self._limits.max_bytes} bytes"
            )
        declared = self._manifest["volumes"][volume.index]
        if volume.files + 1 > declared["files"]:
            _fail(f"member {raw!r}: volume {volume.index} has more files than its manifest says")
        if volume.bytes + size > declared["bytes"]:
            _fail(f"member {raw!r}: volume {volume.index} has more bytes than its manifest says")
        fd = -1
        if parent.fd >= 0:
            fd = os.open(leaf, _FILE_CREATE, 0o600, dir_fd=parent.fd)
        try:
            remaining = size
            while remaining:
                chunk = stream.read(min(remaining, _CHUNK))
                if not chunk:
                    _fail(
                        f"member {raw!r}: the stream ends {remaining} bytes short of the "
                        f"{size} its header claims"
                    )
                if fd >= 0:
                    _write_all(fd, chunk)
                remaining -= len(chunk)
                self._total += len(chunk)
                self._report()
            if fd >= 0:
                if _CHOWN and _plain_id(member.uid) and _plain_id(member.gid):
                    # Owners as captured, so a non-root app can use its data again.
                    os.fchown(fd, member.uid, member.gid)
                os.fchmod(fd, member.mode & _MODE_MASK)
                os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))
                if self._fsync_each:
                    os.fsync(fd)
        finally:
            if fd >= 0:
                os.close(fd)
        volume.files += 1
        volume.bytes += size

    def _close(self, directory: _Dir) -> None:
        """Finish a directory: its mode and mtime go on last, after its children."""
        if directory.fd < 0:
            return
        try:
            owner = directory.owner
            if owner is not None and _CHOWN and _plain_id(owner[0]) and _plain_id(owner[1]):
                os.fchown(directory.fd, *owner)
            if directory.mode is not None:
                os.fchmod(directory.fd, directory.mode)
            if directory.mtime_ns is not None:
                os.utime(directory.fd, ns=(directory.mtime_ns, directory.mtime_ns))
            if self._fsync_each:
                os.fsync(directory.fd)
        finally:
            if directory.name:  # volume roots belong to the caller
                os.close(directory.fd)

    def _close_all(self) -> None:
        for volume in self._volumes.values():
            while len(volume.stack) > 1:
                self._close(volume.stack.pop())
            self._close(volume.stack[0])

    def _abandon(self) -> None:
        """On failure: close what is open, finish nothing (the caller removes staging)."""
        for volume in self._volumes.values():
            while len(volume.stack) > 1:
                directory = volume.stack.pop()
                if directory.fd >= 0:
                    os.close(directory.fd)

    def _check_counts(self) -> None:
        for declared in self._manifest["volumes"]:
            volume = self._volumes[declared["index"]]
            if (volume.files, volume.bytes) != (declared["files"], declared["bytes"]):
                _fail(
                    f"volume {volume.index} ({volume.name}) holds {volume.files} files and "
                    f"{volume.bytes} bytes, but its manifest declares {declared['files']} "
                    f"files and {declared['bytes']} bytes"
                )

    def _report(self, *, final: bool = False) -> None:
        if self._progress is None or self._total == self._reported:
            return
        if final or self._total - self._reported >= _PROGRESS_EVERY:
            self._reported = self._total
            self._progress(self._total)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


def _syncfs(fd: int) -> bool:
    """Flush the whole filesystem holding ``fd``; False when the platform has no syncfs."""
    libc = _libc()
    if libc is None:
        return False
    if libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err))
    return True


def _fsync_tree(root_fd: int) -> None:
    """Fsync every file and directory below ``root_fd`` (all created by the reader)."""
    stack = [os.dup(root_fd)]
    try:
        while stack:
            dir_fd = stack.pop()
            try:
                with os.scandir(dir_fd) as it:
                    entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                for name, is_dir in entries:
                    if is_dir:
                        stack.append(os.open(name, _DIR_OPEN, dir_fd=dir_fd))
                        continue
                    fd = os.open(name, _FILE_READ, dir_fd=dir_fd)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        for fd in stack:
            os.close(fd)


def _make_durable(roots: list[int]) -> None:
    """Make everything staged durable: one syncfs per filesystem, not an fsync per file.

    Fsyncing each of many small files costs a journal commit apiece (minutes for a
    tree that extracts in seconds); syncfs commits once and covers every file and
    directory entry written. Should syncfs fail as unsupported, every staged entry
    is fsynced instead.
    """
    synced: set[int] = set()
    for fd in roots:
        device = os.fstat(fd).st_dev
        if device in synced:
            continue
        if _syncfs(fd):
            synced.add(device)
        else:
            _fsync_tree(fd)


def _open_staging(staging: dict[int, Path]) -> dict[int, int]:
    roots: dict[int, int] = {}
    try:
        for index, path in staging.items():
            fd = os.open(path, _DIR_OPEN)
            roots[index] = fd
            with os.scandir(fd) as it:
                if next(it, None) is not None:
                    raise ValueError(f"staging directory {path} is not empty")
    except BaseException:
        for fd in roots.values():
            os.close(fd)
        raise
    return roots


def read_archive(
    source: BinaryIO,
    *,
    limits: Limits,
    staging: dict[int, Path] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Read an untrusted archive from ``source`` and answer its manifest.

    With ``staging`` (volume index -> an existing, empty directory, one per manifest
    volume) each volume's tree is written into its directory; without it, every
    byte is read and checked and nothing is written. ``progress`` receives the
    volume bytes read so far. Any rule the archive breaks raises ``ArchiveInvalid``
    naming the member; the staging directories may then hold partial content,
    which the caller removes. A staging directory that is missing or not empty
    is the caller's bug and raises ``OSError``/``ValueError`` before any reading.
    """
    roots = _open_staging(staging) if staging is not None else None
    try:
        return _Reader(source, limits, roots, progress).run()
    except ArchiveInvalid:
        raise
    except (
        tarfile.TarError,
        zstandard.ZstdError,
        OSError,
        UnicodeError,
        ValueError,
        OverflowError,
        RecursionError,
        EOFError,
    ) as exc:
        raise ArchiveInvalid(f"the archive could not be read or staged: {exc}") from exc
    finally:
        for fd in (roots or {}).values():
            os.close(fd)
