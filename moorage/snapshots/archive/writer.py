"""The archive writer (SPEC section 5): volume trees -> one durable ``.tar.zst``, streamed.

Two passes over each tree, both under directory fds opened ``O_NOFOLLOW``:

    scan     (``scan.py``) list every entry in archive order into a spool file
             (metadata, link targets, hard-link groups) and count each type for
             the manifest
    stream   (``stream.py``, on a producer thread, through ``pipe.py``) manifest
             first, then each spooled entry; regular files are opened
             ``O_NOFOLLOW`` and read extent by extent (``SEEK_DATA``/``SEEK_HOLE``),
             holes sent as zeros that zstd shrinks to nothing

This module is the entry: it runs both passes, compresses on the caller's thread
and makes the file durable under its final name. Memory stays flat: the spool is
on disk, data moves in 1 MiB chunks. Exactly the scanned bytes of each file are
written (a file that changed size meanwhile is cut or zero-padded, with a
warning), so the manifest's counts are always true. Sockets and devices cannot
be stored: they are listed in ``WriteResult.skipped``, so a caller knows the
archive does not hold the whole tree. setuid/setgid bits are dropped with a
warning. The writer never follows a symlink, never leaves a half-written archive
under its final name, and never stores what the reader would refuse.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, cast

import zstandard

from moorage.snapshots.archive.format import (
    MANIFEST_NAME,
    VolumeSource,
    WriteResult,
    build_manifest,
    encode_manifest,
)
from moorage.snapshots.archive.pipe import CHUNK, Pipe, Stopped
from moorage.snapshots.archive.scan import SPOOL_VOLUME, Notes, scan_volume
from moorage.snapshots.archive.stream import TarStream
from moorage.snapshots.archive.tar import REG, member_header


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
    notes = Notes()
    try:
        with tempfile.TemporaryFile(dir=dest.parent) as spool:
            counted = []
            for volume in volumes:
                spool.write(SPOOL_VOLUME)
                counted.append((volume, scan_volume(volume, spool, notes)))
            created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            manifest = build_manifest(workload, created, counted)
            manifest_bytes = encode_manifest(manifest)
            spool.seek(0)
            with open(partial, "wb", buffering=CHUNK) as raw:
                hashing = _HashingFile(raw)
                cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
                pipe = Pipe()

                def produce() -> None:
                    try:
                        stream = TarStream(pipe, notes, progress)
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
                            if spool.read(1) != SPOOL_VOLUME:
                                raise RuntimeError("capture spool out of step")
                            stream.volume(volume, spool)
                        stream.end()
                        pipe.close()
                    except Stopped:
                        pass
                    except BaseException as exc:  # raised again on the caller's thread
                        pipe.error = exc

                producer = threading.Thread(target=produce, name="archive-read", daemon=True)
                with cctx.stream_writer(
                    cast(IO[bytes], hashing), closefd=False, write_size=CHUNK
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
