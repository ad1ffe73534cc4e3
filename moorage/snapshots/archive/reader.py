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

This module holds ``read_archive`` and the state of one read (the manifest, the
volumes, the counts, the caps over the whole stream) and decides each member in
turn: ``members`` reads and checks headers, ``tree`` finds the open directory a
member lands in, ``extract`` does what the entry needs on disk.

The reader must never call ``tarfile.extract``/``extractall``, never follow a
link, never allocate more than a cap allows because a header said so, never write
outside the staging directories, and never let any exception but
``ArchiveInvalid`` out for a bad archive.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, BinaryIO

import zstandard

from moorage.errors import ArchiveInvalid
from moorage.snapshots.archive import durable, extract, tree
from moorage.snapshots.archive.format import (
    MANIFEST_NAME,
    VOLUMES_DIR,
    Limits,
    counted_keys,
    fail,
    parse_manifest,
    shown,
)
from moorage.snapshots.archive.members import (
    COUNTER,
    TarInput,
    check_symlink_target,
    check_xattrs,
    drain,
    member_path,
    next_header,
    pax_cap,
    skip_padding,
)
from moorage.snapshots.archive.tar import LNK, SYM, Header
from moorage.snapshots.archive.tree import KIND_NAMES, Dir, Volume
from moorage.snapshots.archive.zstd import Prefetcher

_PROGRESS_EVERY = 1 << 20


class _Reader:
    def __init__(
        self,
        source: Prefetcher,
        limits: Limits,
        roots: dict[int, int] | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._in = TarInput(source.next)
        self._limits = limits
        self._roots = roots
        self._progress = progress
        self._max_extended = pax_cap(limits)
        self._members = 0
        self._total = 0
        self._reported = 0
        self._manifest: dict[str, Any] = {}
        self._volumes: dict[int, Volume] = {}
        self._current: Volume | None = None
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
            while (member := next_header(self._in, self._max_extended)) is not None:
                self._member(member)
            if not self._manifest:
                fail("the archive holds no manifest.json")
            drain(self._in)
            self._close_all()
        except BaseException:
            self._abandon()
            raise
        self._check_counts()
        if self._roots is not None and not self._fsync_each:
            durable.make_durable(list(self._roots.values()))
        self._report(final=True)
        return self._manifest

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
        index, parts = member_path(member.name, member.is_dir, self._limits, self._volumes)
        volume = self._enter(index)
        if self._manifest["format"] == 1 and not (member.is_reg or member.is_dir):
            fail(f"member {shown(member.name)}: format 1 archives hold files and directories only")
        if not parts:
            if not member.is_dir:
                fail(f"member {shown(member.name)}: a volume root must be a directory")
            if volume.root_declared:
                fail(f"member {shown(member.name)} appears twice")
            volume.root_declared = True
            check_xattrs(member, self._limits)
            volume.stack[0].header = member
            return
        parent = tree.descend(volume, parts[:-1], member.name, fsync_each=self._fsync_each)
        leaf = parts[-1]
        existing = parent.children.get(leaf)
        if existing is not None:
            fail(
                f"member {shown(member.name)}: {KIND_NAMES[existing]} of that name is "
                "already in the archive"
            )
        self._count(volume, member)
        check_xattrs(member, self._limits)
        if member.is_dir:
            parent.children[leaf] = "d"
            fd = -1
            if parent.fd >= 0:
                fd = extract.make_dir(parent.fd, leaf)
            volume.stack.append(Dir(leaf, fd, member))
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
                extract.make_fifo(member, parent.fd, leaf, fsync_each=self._fsync_each)

    def _key(self, name: bytes) -> int:
        digest = hashlib.blake2b(name, digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "big")

    def _count(self, volume: Volume, member: Header) -> None:
        counter = COUNTER[member.kind]
        if counter == "dirs" and self._manifest["format"] == 1:
            return  # format 1 does not count directories
        declared = self._manifest["volumes"][volume.index][counter]
        volume.counts[counter] = volume.counts.get(counter, 0) + 1
        if volume.counts[counter] > declared:
            fail(
                f"member {shown(member.name)}: volume {volume.index} has more {counter} than "
                "its manifest says"
            )

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
        skip_padding(self._in, member.size)
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
            self._volumes[index] = Volume(index, volume["name"], [Dir(b"", root_fd)])
        self._manifest = manifest

    def _enter(self, index: int) -> Volume:
        if self._current is not None and self._current.index == index:
            return self._current
        if index in self._finished:
            fail(f"members of volume {index} are not contiguous")
        if self._current is not None:
            self._leave(self._current)
        self._current = self._volumes[index]
        return self._current

    def _leave(self, volume: Volume) -> None:
        tree.close_below_root(volume, fsync_each=self._fsync_each)
        self._finished.add(volume.index)

    def _file(self, member: Header, volume: Volume, parent: Dir, leaf: bytes) -> None:
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
            fd = extract.create_file(parent.fd, leaf)
        try:
            offset = written_to = 0
            for chunk, start, end in self._in.pieces(size):
                if fd >= 0:
                    written_to = max(
                        written_to, extract.sparse_write(fd, chunk, start, end, offset)
                    )
                offset += end - start
                self._total += end - start
                self._report()
            if offset < size:
                fail(
                    f"member {shown(raw)}: the stream ends {size - offset} bytes short of the "
                    f"{size} its header claims"
                )
            skip_padding(self._in, size)
            if fd >= 0:
                extract.end_file(member, fd, written_to, fsync_each=self._fsync_each)
        finally:
            if fd >= 0:
                os.close(fd)
        volume.counts["bytes"] = volume.counts.get("bytes", 0) + size

    def _symlink(self, member: Header, parent: Dir, leaf: bytes) -> None:
        check_symlink_target(member, self._limits)
        if parent.fd >= 0:
            extract.make_symlink(member, parent.fd, leaf)

    def _hardlink(self, member: Header, volume: Volume, parent: Dir, leaf: bytes) -> None:
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
        extract.make_hardlink(member, volume.stack[0].fd, parts, parent.fd, leaf)

    def _close_all(self) -> None:
        for volume in self._volumes.values():
            tree.close_below_root(volume, fsync_each=self._fsync_each)
            tree.close(volume.stack[0], fsync_each=self._fsync_each)

    def _abandon(self) -> None:
        """On failure: close what is open, finish nothing (the caller removes staging)."""
        for volume in self._volumes.values():
            tree.abandon(volume)

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
    roots = extract.open_staging(staging) if staging is not None else None
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
