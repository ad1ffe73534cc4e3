"""The untrusted archive reader (SPEC section 5): verify, or stage into empty directories.

Every byte is hostile. Each member is validated before anything is done for it:
its name (raw bytes, inside ``volumes/<i>/``, no ``.``/``..``/empty component, no
NUL), its type (file, directory, symlink, hard link, fifo; nothing else), its
parents (directories this archive created, never a link: nothing is written
through a link), hard-link targets (an earlier regular file of the same volume),
and the caps (bytes, entries, depth, name, link target, extended attributes).
Files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` under directory fds opened
``O_DIRECTORY|O_NOFOLLOW``; symlinks with ``symlinkat`` whatever they point at.
Zero runs become holes (a sparse file stays sparse); a header's sparse map is
refused. After the stream, each volume's entries of every type and its bytes
must equal the manifest's.

The reader must never call ``tarfile.extract``/``extractall``, never follow a
link, never allocate more than a cap allows because a header said so, never write
outside the staging directories, and never let any exception but
``ArchiveInvalid`` out for a bad archive.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import zstandard

from moorage.errors import ArchiveInvalid
from moorage.snapshots.archive import durable
from moorage.snapshots.archive.format import (
    ACL_XATTRS,
    MANIFEST_NAME,
    MODE_MASK,
    VOLUMES_DIR,
    XATTR_PREFIX,
    Limits,
    component_problem,
    counted_keys,
    fail,
    parse_manifest,
    shown,
    xattr_allowed,
)
from moorage.snapshots.archive.tar import (
    AREG,
    BLOCK,
    DIR,
    FIFO,
    LNK,
    PAX,
    REFUSED_TYPES,
    REG,
    SYM,
    Header,
    apply_pax,
    blocks,
    parse_block,
    parse_pax,
)
from moorage.snapshots.archive.zstd import Prefetcher

_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FIFO_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_CHOWN = os.geteuid() == 0  # only root can give files back to their owners
_HOLE = 4096  # a zero run of a whole aligned block of this size is left as a hole
_ZERO_BLOCK = bytes(_HOLE)
_PROGRESS_EVERY = 1 << 20
_MAX_TRAILING_ZEROS = 8 << 20  # padding allowed after the end-of-archive marker
_MAX_ABS_MTIME_NS = (1 << 40) * 10**9  # anything further out is a forged header
_INDEX_DIGITS = b"0123456789"

# What each member type counts as in the manifest (SPEC section 5).
_COUNTER = {REG: "files", AREG: "files", DIR: "dirs", SYM: "symlinks", LNK: "hardlinks"}
_COUNTER[FIFO] = "fifos"
_KIND_NAMES = {"d": "a directory", "f": "a file", "l": "a symlink", "p": "a fifo"}


def _acl_blob(value: bytes) -> bool:
    """A POSIX ACL xattr as the kernel takes it: version 2, then 8-byte entries."""
    return (
        len(value) >= 4
        and (len(value) - 4) % 8 == 0
        and int.from_bytes(value[:4], "little") == 2
        and len(value) <= 4 + 8 * 1024
    )


def _plain_id(value: int) -> bool:
    """An id ``chown`` takes as itself (not -1, not past 32 bits)."""
    return 0 <= value < 0xFFFF_FFFF


class _Input:
    """The decompressed tar stream, consumed in order.

    ``read`` answers up to ``n`` bytes (shorter only at the end) for headers;
    ``pieces`` yields file data as ``(chunk, start, end)`` slices without copying.
    """

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next = next_chunk
        self._chunk = b""
        self._pos = 0
        self.offset = 0

    def _fill(self) -> bool:
        if self._pos < len(self._chunk):
            return True
        self._chunk = self._next()
        self._pos = 0
        return bool(self._chunk)

    def read(self, n: int) -> bytes:
        parts = []
        while n and self._fill():
            take = min(n, len(self._chunk) - self._pos)
            parts.append(self._chunk[self._pos : self._pos + take])
            self._pos += take
            self.offset += take
            n -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def pieces(self, n: int) -> Iterator[tuple[bytes, int, int]]:
        while n and self._fill():
            start = self._pos
            end = min(len(self._chunk), start + n)
            self._pos = end
            self.offset += end - start
            n -= end - start
            yield self._chunk, start, end


@dataclass
class _Dir:
    """An open directory on the way down to the current member."""

    name: bytes
    fd: int  # -1 when only verifying
    header: Header | None = None  # its metadata goes on last, after its children
    children: dict[bytes, str] = field(default_factory=dict)  # name -> d, f, l or p


@dataclass
class _Volume:
    index: int
    name: str
    stack: list[_Dir]
    root_declared: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def _sparse_write(fd: int, data: bytes, start: int, end: int, offset: int) -> int:
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


class _Reader:
    def __init__(
        self,
        source: Prefetcher,
        limits: Limits,
        roots: dict[int, int] | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._in = _Input(source.next)
        self._limits = limits
        self._roots = roots
        self._progress = progress
        self._max_extended = max(
            64 * 1024, 2 * limits.max_name_bytes + limits.max_xattr_bytes + 4096
        )
        self._members = 0
        self._total = 0
        self._reported = 0
        self._manifest: dict[str, Any] = {}
        self._volumes: dict[int, _Volume] = {}
        self._current: _Volume | None = None
        self._finished: set[int] = set()
        self._volumes_dir_seen = False
        self._salt = os.urandom(16)
        self._regular: set[int] = set()  # keyed digests of every regular file's name
        # Staged data must be durable before restore swaps it in: one syncfs per
        # filesystem at the end where the platform has it, else an fsync per entry.
        self._fsync_each = roots is not None and not durable.has_syncfs()

    # --- the stream ---------------------------------------------------------

    def run(self) -> dict[str, Any]:
        try:
            while (member := self._next_header()) is not None:
                self._member(member)
            if not self._manifest:
                fail("the archive holds no manifest.json")
            self._drain()
            self._close_all()
        except BaseException:
            self._abandon()
            raise
        self._check_counts()
        if self._roots is not None and not self._fsync_each:
            durable.make_durable(list(self._roots.values()))
        self._report(final=True)
        return self._manifest

    def _block(self, what: str) -> tuple[int, bytes]:
        start = self._in.offset
        buf = self._in.read(BLOCK)
        if len(buf) < BLOCK:
            if not buf and what == "header":
                fail("the tar stream ends without its end-of-archive marker (truncated)")
            fail(f"the tar stream is truncated inside the {what} at offset {start}")
        return start, buf

    def _next_header(self) -> Header | None:
        """The next member's header with its pax records applied; None at the end marker."""
        start, buf = self._block("header")
        if not buf.strip(b"\0"):
            return None
        header = parse_block(buf, start)
        if header.kind == PAX:
            if header.size > self._max_extended:
                fail(
                    f"the pax header at offset {start} claims {header.size} bytes, "
                    f"over the cap of {self._max_extended}"
                )
            payload = self._in.read(blocks(header.size))
            if len(payload) < blocks(header.size):
                fail(f"the tar stream is truncated inside the pax header at offset {start}")
            records = parse_pax(payload[: header.size], start)
            at, buf = self._block("member after a pax header")
            if not buf.strip(b"\0"):
                fail(f"the pax header before offset {at} is not followed by a member")
            header = parse_block(buf, at)
            if header.kind == PAX:
                fail(f"two pax headers in a row at offset {at}")
            apply_pax(header, records)
            header.offset = start
        if header.kind in REFUSED_TYPES:
            fail(
                f"member {shown(header.name)} is {REFUSED_TYPES[header.kind]}; archives hold "
                "files, directories, symlinks, hard links and fifos only"
            )
        if header.kind not in _COUNTER:
            fail(f"member {shown(header.name)} is of the unsupported type {header.kind!r}")
        if abs(header.mtime_ns) > _MAX_ABS_MTIME_NS:
            fail(f"member {shown(header.name)} has an implausible mtime")
        if not (_plain_id(header.uid) and _plain_id(header.gid)):
            fail(f"member {shown(header.name)} has an owner no file can have")
        if header.size and not header.is_reg:
            fail(f"member {shown(header.name)} is not a file but claims {header.size} bytes")
        return header

    def _drain(self) -> None:
        """After the first zero block, only zero padding may follow (at least one more block)."""
        zeros = BLOCK
        while chunk := self._in.read(64 * 1024):
            if chunk.strip(b"\0"):
                fail(
                    "the tar stream has data after its end-of-archive marker "
                    "(a corrupt header or a hidden member)"
                )
            zeros += len(chunk)
            if zeros > _MAX_TRAILING_ZEROS:
                fail("the tar stream has more padding after its end than any writer makes")
        if zeros < 2 * BLOCK:
            fail("the tar stream's end-of-archive marker is incomplete (truncated)")

    # --- one member ---------------------------------------------------------

    def _member(self, member: Header) -> None:
        self._members += 1
        if self._members > self._limits.max_members:
            fail(f"the archive has more than {self._limits.max_members} members")
        if not self._manifest:
            self._read_manifest(member)
            return
        if member.is_dir and member.name in (b"volumes", b"volumes/"):
            # What tar makes of the tree; it carries nothing, so it is allowed once.
            if self._volumes_dir_seen:
                fail(f"member {shown(member.name)} appears twice")
            self._volumes_dir_seen = True
            return
        index, parts = self._path(member.name, member.is_dir)
        volume = self._enter(index)
        if self._manifest["format"] == 1 and not (member.is_reg or member.is_dir):
            fail(f"member {shown(member.name)}: format 1 archives hold files and directories only")
        if not parts:
            if not member.is_dir:
                fail(f"member {shown(member.name)}: a volume root must be a directory")
            if volume.root_declared:
                fail(f"member {shown(member.name)} appears twice")
            volume.root_declared = True
            self._check_xattrs(member)
            volume.stack[0].header = member
            return
        parent = self._descend(volume, parts[:-1], member.name)
        leaf = parts[-1]
        existing = parent.children.get(leaf)
        if existing is not None:
            fail(
                f"member {shown(member.name)}: {_KIND_NAMES[existing]} of that name is "
                "already in the archive"
            )
        self._count(volume, member)
        self._check_xattrs(member)
        if member.is_dir:
            parent.children[leaf] = "d"
            fd = -1
            if parent.fd >= 0:
                os.mkdir(leaf, 0o700, dir_fd=parent.fd)
                fd = os.open(leaf, _DIR_OPEN, dir_fd=parent.fd)
            volume.stack.append(_Dir(leaf, fd, member))
        elif member.is_reg:
            parent.children[leaf] = "f"
            self._regular.add(self._key(member.name))
            self._file(member, volume, parent, leaf)
        elif member.kind == SYM:
            parent.children[leaf] = "l"
            self._symlink(member, parent, leaf)
        elif member.kind == LNK:
            parent.children[leaf] = "f"
            self._hardlink(member, volume, parent, leaf)
        else:
            parent.children[leaf] = "p"
            if parent.fd >= 0:
                os.mkfifo(leaf, 0o600, dir_fd=parent.fd)
                self._fifo(member, parent.fd, leaf)

    def _key(self, name: bytes) -> int:
        digest = hashlib.blake2b(name, digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "big")

    def _count(self, volume: _Volume, member: Header) -> None:
        counter = _COUNTER[member.kind]
        if counter == "dirs" and self._manifest["format"] == 1:
            return  # format 1 does not count directories
        declared = self._manifest["volumes"][volume.index][counter]
        volume.counts[counter] = volume.counts.get(counter, 0) + 1
        if volume.counts[counter] > declared:
            fail(
                f"member {shown(member.name)}: volume {volume.index} has more {counter} than "
                "its manifest says"
            )

    def _check_xattrs(self, member: Header) -> None:
        """Attributes as staging would apply them, so verify-only refuses what staging
        would: user data on files and directories, an access ACL on those and fifos, a
        default ACL on directories only, each ACL a well-formed blob."""
        if not member.xattrs:
            return
        where = f"member {shown(member.name)}"
        size = 0
        for key, value in member.xattrs.items():
            if member.kind not in (REG, AREG, DIR, FIFO):
                fail(f"{where}: extended attributes on a link")
            if not xattr_allowed(key) or key == XATTR_PREFIX or "\0" in key:
                fail(f"{where}: the extended attribute {key!r} is not user data or a POSIX ACL")
            if key == ACL_XATTRS[1] and not member.is_dir:
                fail(f"{where}: a default ACL on something that is not a directory")
            if key in ACL_XATTRS and not _acl_blob(value):
                fail(f"{where}: its {key} is not a well-formed POSIX ACL")
            if key not in ACL_XATTRS and not (member.is_reg or member.is_dir):
                fail(f"{where}: user attributes on something that is not a file or directory")
            size += len(key) + len(value)
        if size > self._limits.max_xattr_bytes:
            fail(f"{where}: its extended attributes are over the cap")

    def _read_manifest(self, member: Header) -> None:
        name = member.name.removesuffix(b"/") if member.is_dir else member.name
        if name != MANIFEST_NAME.encode():
            fail(f"the first member must be {MANIFEST_NAME}, not {shown(member.name)}")
        if not member.is_reg:
            fail(f"{MANIFEST_NAME} must be a regular file")
        if member.size > self._limits.max_manifest_bytes:
            fail(
                f"{MANIFEST_NAME} is {member.size} bytes, over the cap of "
                f"{self._limits.max_manifest_bytes}"
            )
        data = self._in.read(member.size)
        if len(data) != member.size:
            fail(f"the stream ends inside {MANIFEST_NAME}")
        self._skip_padding(member.size)
        manifest = parse_manifest(data, self._limits)
        count = len(manifest["volumes"])
        if self._roots is not None and set(self._roots) != set(range(count)):
            fail(
                f"the archive holds volumes {list(range(count))} but staging directories "
                f"were given for {sorted(self._roots)}"
            )
        for volume in manifest["volumes"]:
            index = volume["index"]
            root_fd = -1 if self._roots is None else self._roots[index]
            self._volumes[index] = _Volume(index, volume["name"], [_Dir(b"", root_fd)])
        self._manifest = manifest

    def _skip_padding(self, size: int) -> None:
        pad = blocks(size) - size
        if pad and len(self._in.read(pad)) != pad:
            fail("the tar stream ends inside a member's padding (truncated)")

    def _path(self, raw: bytes, is_dir: bool) -> tuple[int, list[bytes]]:
        """Validate a member's name; answer its volume index and components below it."""
        limits = self._limits
        if len(raw) > limits.max_name_bytes:
            fail(f"member {shown(raw, 80)}: its name is over {limits.max_name_bytes} bytes")
        name = raw[:-1] if is_dir and raw.endswith(b"/") else raw
        if name.endswith(b"/"):
            what = "directory" if is_dir else "file"
            fail(f"member {shown(raw)}: a trailing slash on a {what} name")
        if name.startswith(b"/"):
            fail(f"member {shown(raw)}: absolute names are refused")
        parts = name.split(b"/")
        for part in parts:
            problem = component_problem(part, limits.max_component_bytes)
            if problem is not None:
                fail(f"member {shown(raw)}: its name has {problem}")
        if parts[0] != VOLUMES_DIR.encode() or len(parts) < 2:
            fail(f"member {shown(raw)} is outside {VOLUMES_DIR}/<index>/")
        digits = parts[1]
        if (
            len(digits) > 9
            or digits.strip(_INDEX_DIGITS)
            or (len(digits) > 1 and digits.startswith(b"0"))
        ):
            fail(f"member {shown(raw)}: {shown(digits)} is not a volume index")
        index = int(digits)
        if index not in self._volumes:
            fail(f"member {shown(raw)}: volume {index} is not in the manifest")
        below = parts[2:]
        if len(below) > limits.max_depth:
            fail(f"member {shown(raw)}: deeper than {limits.max_depth} levels")
        return index, below

    def _enter(self, index: int) -> _Volume:
        if self._current is not None and self._current.index == index:
            return self._current
        if index in self._finished:
            fail(f"members of volume {index} are not contiguous")
        if self._current is not None:
            self._leave(self._current)
        self._current = self._volumes[index]
        return self._current

    def _leave(self, volume: _Volume) -> None:
        while len(volume.stack) > 1:
            self._close(volume.stack.pop())
        self._finished.add(volume.index)

    def _descend(self, volume: _Volume, parents: list[bytes], raw: bytes) -> _Dir:
        """The open directory for ``parents``: only directories this archive made, and
        only while they are still being filled (a directory's members are contiguous)."""
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
            missing = shown(b"/".join(parents[: common + 1]))
            kind = stack[-1].children.get(parents[common])
            if kind is None:
                fail(f"member {shown(raw)}: its directory {missing} is not in the archive yet")
            if kind != "d":
                fail(f"member {shown(raw)}: {missing} is {_KIND_NAMES[kind]}, not a directory")
            fail(
                f"member {shown(raw)}: directory {missing} was already finished; "
                "a directory's members must be contiguous"
            )
        return stack[-1]

    def _file(self, member: Header, volume: _Volume, parent: _Dir, leaf: bytes) -> None:
        raw, size = member.name, member.size
        if self._total + size > self._limits.max_bytes:
            fail(
                f"member {shown(raw)} ({size} bytes) takes the archive over the cap of "
                f"{self._limits.max_bytes} bytes"
            )
        declared = self._manifest["volumes"][volume.index]["bytes"]
        if volume.counts.get("bytes", 0) + size > declared:
            fail(
                f"member {shown(raw)}: volume {volume.index} has more bytes than its manifest says"
            )
        fd = -1
        if parent.fd >= 0:
            fd = os.open(leaf, _FILE_CREATE, 0o600, dir_fd=parent.fd)
        try:
            offset = written_to = 0
            for chunk, start, end in self._in.pieces(size):
                if fd >= 0:
                    written_to = max(written_to, _sparse_write(fd, chunk, start, end, offset))
                offset += end - start
                self._total += end - start
                self._report()
            if offset < size:
                fail(
                    f"member {shown(raw)}: the stream ends {size - offset} bytes short of the "
                    f"{size} its header claims"
                )
            self._skip_padding(size)
            if fd >= 0:
                if written_to < size:
                    os.ftruncate(fd, size)  # a trailing hole
                self._finish_fd(member, fd)
        finally:
            if fd >= 0:
                os.close(fd)
        volume.counts["bytes"] = volume.counts.get("bytes", 0) + size

    def _symlink(self, member: Header, parent: _Dir, leaf: bytes) -> None:
        target = member.linkname
        if not target:
            fail(f"member {shown(member.name)}: a symlink with an empty target")
        if b"\0" in target:
            fail(f"member {shown(member.name)}: a symlink target with a NUL byte")
        if len(target) > self._limits.max_link_bytes:
            fail(
                f"member {shown(member.name)}: a symlink target over "
                f"{self._limits.max_link_bytes} bytes"
            )
        if parent.fd >= 0:
            # symlinkat: the link is data, created under the staging fd, never followed.
            os.symlink(target, leaf, dir_fd=parent.fd)
            self._finish_entry(member, parent.fd, leaf)

    def _hardlink(self, member: Header, volume: _Volume, parent: _Dir, leaf: bytes) -> None:
        target = member.linkname
        prefix = f"{VOLUMES_DIR}/{volume.index}/".encode()
        if (
            not target.startswith(prefix)
            or len(target) > self._limits.max_name_bytes
            or self._key(target) not in self._regular
        ):
            fail(
                f"member {shown(member.name)}: a hard link to {shown(target)}, which is not "
                "an earlier regular file of the same volume"
            )
        if parent.fd < 0:
            return
        parts = target[len(prefix) :].split(b"/")
        fds = []
        try:
            dir_fd = volume.stack[0].fd
            for part in parts[:-1]:
                dir_fd = os.open(part, _DIR_OPEN, dir_fd=dir_fd)
                fds.append(dir_fd)
            st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                fail(f"member {shown(member.name)}: its link target is not a regular file")
            os.link(parts[-1], leaf, src_dir_fd=dir_fd, dst_dir_fd=parent.fd, follow_symlinks=False)
        finally:
            for fd in fds:
                os.close(fd)

    def _finish_fd(self, member: Header, fd: int) -> None:
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
        if self._fsync_each and member.kind != FIFO:
            os.fsync(fd)

    def _finish_entry(self, member: Header, dir_fd: int, leaf: bytes) -> None:
        """Owner and mtime of a symlink just created at ``leaf``, never followed."""
        if _CHOWN:
            os.chown(leaf, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
        os.utime(leaf, ns=(member.mtime_ns, member.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)

    def _fifo(self, member: Header, dir_fd: int, leaf: bytes) -> None:
        """Finish a fifo through an fd: opened ``O_NOFOLLOW`` and checked to be a fifo, so
        nothing renamed over the name in the meantime is ever changed."""
        fd = os.open(leaf, _FIFO_OPEN, dir_fd=dir_fd)
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                fail(f"member {shown(member.name)}: the fifo it made was replaced while staging")
            self._finish_fd(member, fd)
        finally:
            os.close(fd)

    def _close(self, directory: _Dir) -> None:
        """Finish a directory: its metadata goes on last, after its children."""
        if directory.fd < 0:
            return
        try:
            if directory.header is not None:
                self._finish_fd(directory.header, directory.fd)
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
        keys = [k for k in counted_keys(self._manifest) if k != "allocated_bytes"]
        for declared in self._manifest["volumes"]:
            volume = self._volumes[declared["index"]]
            got = {k: volume.counts.get(k, 0) for k in keys}
            want = {k: declared[k] for k in keys}
            if got != want:
                fail(
                    f"volume {volume.index} ({volume.name}) holds "
                    + ", ".join(f"{got[k]} {k}" for k in keys)
                    + ", but its manifest declares "
                    + ", ".join(f"{want[k]} {k}" for k in keys)
                )

    def _report(self, *, final: bool = False) -> None:
        if self._progress is None or self._total == self._reported:
            return
        if final or self._total - self._reported >= _PROGRESS_EVERY:
            self._reported = self._total
            self._progress(self._total)


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


def _open_staging(staging: dict[int, Any]) -> dict[int, int]:
    roots: dict[int, int] = {}
    try:
        for index, path in staging.items():
            fd = os.open(path, _DIR_OPEN)
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


def read_archive(
    source: BinaryIO,
    *,
    limits: Limits,
    staging: dict[int, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Read an untrusted archive (format 1 or 2) from ``source`` and answer its manifest.

    With ``staging`` (volume index -> an existing, empty directory path, one per
    manifest volume) each volume's tree is written into its directory and made
    durable; without it, every byte is read and checked and nothing is written.
    ``progress`` receives the file bytes read so far. Any rule the archive breaks
    raises ``ArchiveInvalid`` naming the member; the staging directories may then
    hold partial content, which the caller removes. A staging directory that is
    missing or not empty is the caller's bug and raises ``OSError``/``ValueError``
    before any reading.
    """
    roots = _open_staging(staging) if staging is not None else None
    try:
        with Prefetcher(source, limits.max_window_log) as prefetch:
            return _Reader(prefetch, limits, roots, progress).run()
    except ArchiveInvalid:
        raise
    except (
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
