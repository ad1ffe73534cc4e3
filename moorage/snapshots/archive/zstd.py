"""Zstd framing for untrusted input (RFC 8878): exactly one frame, bounded output per step.

``ZstdFrame`` walks the frame's block headers itself and feeds the decompressor a
few whole blocks at a time: a block never expands beyond 128 KiB, so no step can
produce more than 1 MiB however small and hostile the input. It knows where the
frame ends, so a truncated frame and any byte after it are errors.
``Prefetcher`` runs those steps on a thread of its own (zstd releases the GIL), so
decompression overlaps the reader's writes; at most a few MiB wait in between.

Nothing here trusts a size the stream declares, and nothing allocates more than
one step's output at a time.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO

import zstandard

from moorage.snapshots.archive.format import fail

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_MAX_BLOCK = 128 * 1024
_ZSTD_BLOCKS_PER_FEED = 32  # so one decompress call yields at most 4 MiB
_ZSTD_READ = 256 * 1024


class ZstdFrame:
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
            fail(
                f"the zstd stream is truncated: it ends after {self.compressed + len(self._buf)} "
                "bytes, inside its frame"
            )

    def _header(self) -> None:
        if not self._fill(4):
            if not self._buf:
                fail("the archive is empty")
            fail("the archive is not a zstd stream")
        if bytes(self._buf[:4]) != ZSTD_MAGIC:
            fail("the archive is not a zstd stream (bad magic number)")
        self._need(5)
        descriptor = self._buf[4]
        fcs_flag = descriptor >> 6
        single_segment = bool(descriptor & 0x20)
        self._checksum = bool(descriptor & 0x04)
        if descriptor & 0x03:
            fail("the zstd frame needs a dictionary, which the format never uses")
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
            fail(
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
                fail("the zstd stream has a block of the reserved type")
            if block_size > _ZSTD_MAX_BLOCK:
                fail("the zstd stream has a block larger than the format allows")
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
            fail(f"the zstd stream is corrupt: {exc}")
        if self._last_block:
            if not self._dobj.eof or self._dobj.unused_data:
                fail("the zstd frame does not end where its last block says")
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
            fail("the archive has data after the end of the tar stream")
        if len(self._buf) > self._pos or self._source.read(1):
            fail("the archive has trailing bytes after its zstd frame")


_QUEUE_DEPTH = 4  # steps of at most 1 MiB each waiting for the reader
_POLL = 0.1


class _End:
    """The producer's last word: the frame ended cleanly, or this error stopped it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Prefetcher:
    """Decompressed chunks of one ``ZstdFrame``, produced on a background thread.

    ``next()`` answers the next chunk (bytes, never empty) or ``b""`` once the
    frame ended and nothing follows it; a broken stream raises its ``ArchiveInvalid``
    there, in the reader's thread. ``close()`` stops the producer and joins it; it
    must be called on every path (use as a context manager).
    """

    def __init__(self, source: BinaryIO, max_window_log: int) -> None:
        self._frame = ZstdFrame(source, max_window_log)
        self._queue: queue.Queue[bytes | _End] = queue.Queue(_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._produce, name="archive-zstd", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            while True:
                chunk = self._frame.read()
                if not chunk:
                    break
                if not self._put(chunk):
                    return
            self._frame.finish()
        except BaseException as exc:  # handed to the reader's thread, raised there
            self._put(_End(exc))
            return
        self._put(_End())

    def next(self) -> bytes:
        if self._ended:
            return b""
        item = self._queue.get()
        if isinstance(item, _End):
            self._ended = True
            if item.error is not None:
                raise item.error
            return b""
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
