"""The hand-off between the writer's two threads: tar bytes from the producer to zstd.

The producer thread (``archive-read``) reads the trees and sends tar bytes; the
caller's thread drains them into the compressor. A small pool of reused
``CHUNK`` buffers carries file data, so memory stays flat. An error on either
side stops the other; this module never touches a file itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, cast

CHUNK = 1 << 20  # every read and write of file data


class Stopped(Exception):
    """The consumer gave up (it failed); the producer unwinds quietly."""


class Pipe:
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
            self._free.put(bytearray(CHUNK))
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def _wait(self, action: Callable[[], Any]) -> Any:
        while not self._stop.is_set():
            try:
                return action()
            except (queue.Full, queue.Empty):
                continue
        raise Stopped

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
