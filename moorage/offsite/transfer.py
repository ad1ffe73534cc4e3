"""Moving one copy: encrypt while uploading, read back and verify, fetch for a restore.

Every direction is a stream through an OS pipe between two threads, so memory stays flat
at any archive size (a few chunks in flight, never an archive):

    upload   archive -> SHA-256 -> age encrypt --pipe--> TargetStore.put
    verify   TargetStore.get --pipe--> age decrypt -> SHA-256 (bytes dropped)
    fetch    TargetStore.get --pipe--> age decrypt -> SHA-256 -> scratch file

``put`` is all-or-nothing (``plugins/spec.py``): an upload that fails anywhere (the
archive's read, its digest no longer the recorded one, the target) raises before the
object is committed, so no truncated object is ever put. ``verify`` and ``fetch`` refuse a
copy that does not decrypt (a wrong key, a changed, cut or appended byte: ``copy_corrupt``)
or whose plaintext is not the recorded size and SHA-256 (``copy_corrupt`` too). ``fetch``
writes only to a scratch file beside the destination and renames it into place after
every check passed and it was flushed to disk.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from moorage.errors import MoorageError, TargetError
from moorage.plugins.spec import TargetStore
from moorage.storage.encryption import decrypt_stream, encrypt_stream

CHUNK = 1 << 20


class Hashing:
    """A reader (or writer) that counts and hashes what passes through it."""

    def __init__(self, inner: BinaryIO | None) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()
        self.bytes = 0

    def read(self, n: int = -1) -> bytes:
        assert self.inner is not None
        data = self.inner.read(n)
        self.digest.update(data)
        self.bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        assert self.inner is not None
        n = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        self.digest.update(memoryview(buffer)[:n])
        self.bytes += n
        return int(n)

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.bytes += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        if self.inner is not None:
            self.inner.flush()


@dataclass
class _Side:
    """A thread's end: what it raised, if anything."""

    error: BaseException | None = None


def _run(side: _Side, work: Callable[[], None], close: BinaryIO) -> threading.Thread:
    def body() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the other side, which raises it
            side.error = exc
        finally:
            try:
                close.close()
            except OSError:
                pass  # the other end went away first: its error says why

    thread = threading.Thread(target=body, name="offsite-pipe", daemon=True)
    thread.start()
    return thread


class _Source:
    """The pipe's reading end as ``put`` reads it. At the end of the stream it waits for
    the encrypting thread and raises (so ``put`` does not commit) when that thread failed
    or the archive's digest is not the recorded one."""

    def __init__(
        self,
        pipe: BinaryIO,
        thread: threading.Thread,
        side: _Side,
        plain: Hashing,
        expect: tuple[int, str],
        progress: Callable[[int], None],
    ) -> None:
        self.pipe, self.thread, self.side, self.plain = pipe, thread, side, plain
        self.expect, self.progress, self.sent = expect, progress, 0

    def _check_end(self) -> None:
        self.thread.join()
        if self.side.error is not None:
            raise OSError(f"reading the archive failed: {self.side.error}")
        size, sha = self.expect
        if (self.plain.bytes, self.plain.digest.hexdigest()) != (size, sha):
            raise OSError(
                "the local archive no longer matches its recorded size and SHA-256; "
                "nothing was copied"
            )

    def read(self, n: int = -1) -> bytes:
        data = self.pipe.read(n if n and n > 0 else CHUNK)
        if not data:
            self._check_end()
        else:
            self.sent += len(data)
            self.progress(self.sent)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def upload(
    store: TargetStore,
    key: str,
    archive: Path,
    recipient: str,
    *,
    size: int,
    sha256: str,
    progress: Callable[[int], None] = lambda _n: None,
) -> int:
    """Encrypt ``archive`` to ``recipient`` and put it at ``key``, streamed. The archive
    must still be ``size`` bytes with SHA-256 ``sha256`` (its recorded digest) or nothing
    is committed. ``progress`` gets the ciphertext bytes sent so far. Returns the
    ciphertext size. Raises ``TargetError`` (the target), ``OSError`` (the archive)."""
    r, w = os.pipe()
    reader, writer = os.fdopen(r, "rb"), os.fdopen(w, "wb")
    side = _Side()
    with open(archive, "rb") as src:
        plain = Hashing(src)
        thread = _run(
            side,
            lambda: encrypt_stream(plain, writer, recipient),  # type: ignore[arg-type]
            writer,
        )
        try:
            source = _Source(reader, thread, side, plain, (size, sha256), progress)
            return store.put(key, source)  # type: ignore[arg-type]
        finally:
            reader.close()  # a put that stopped early unblocks the encrypting thread
            thread.join()


def pull(store: TargetStore, key: str, identity: str, sink: Hashing) -> None:
    """Get ``key``, decrypt it into ``sink``. The decrypting thread's error wins over
    the one the target then raises for its cut pipe, except when the target holds no
    such object (``target_object_missing``: the decryptor only saw an empty stream)."""
    r, w = os.pipe()
    reader, writer = os.fdopen(r, "rb"), os.fdopen(w, "wb")
    side = _Side()
    thread = _run(side, lambda: decrypt_stream(reader, sink, identity), reader)  # type: ignore[arg-type]
    failure: BaseException | None = None
    try:
        store.get(key, writer)
    except (MoorageError, OSError) as exc:
        failure = exc
    finally:
        try:
            writer.close()
        except OSError:
            pass
        thread.join()
    if isinstance(failure, TargetError) and failure.code == "target_object_missing":
        raise failure
    if side.error is not None:
        raise side.error
    if failure is not None:
        raise failure


def _check(sink: Hashing, key: str, size: int, sha256: str) -> None:
    if (sink.bytes, sink.digest.hexdigest()) != (size, sha256):
        raise TargetError(
            f"the copy {key} decrypts, but to {sink.bytes} bytes that are not the "
            "snapshot's (size or SHA-256 differ)",
            code="copy_corrupt",
        )


def verify(store: TargetStore, key: str, identity: str, *, size: int, sha256: str) -> None:
    """Read ``key`` back, decrypt it and compare its plaintext's size and SHA-256 with the
    snapshot's. ``TargetError``: ``copy_corrupt`` (wrong key, changed/cut bytes, another
    archive), ``target_object_missing``, or the target's own failure."""
    sink = Hashing(None)
    pull(store, key, identity, sink)
    _check(sink, key, size, sha256)


def fetch(
    store: TargetStore, key: str, identity: str, dest: Path, *, size: int, sha256: str
) -> None:
    """Bring the copy ``key`` back to ``dest`` (an archive path): decrypted into a scratch
    file beside it, checked like ``verify``, flushed, then renamed into place. On any
    failure the scratch file is removed and ``dest`` is untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = dest.with_name(f"{dest.name}.fetch-{os.urandom(6).hex()}")  # one per fetch
    try:
        with open(scratch, "wb") as out:
            sink = Hashing(out)
            pull(store, key, identity, sink)
            _check(sink, key, size, sha256)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, dest)
        fd = os.open(dest.parent, os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        scratch.unlink(missing_ok=True)
