"""Reading a ``docker exec``'s output as it comes, keeping a bounded tail and stopping at a
deadline, so a command that prints without end (``yes``, a 200 MB dump to stdout) costs
the server at most ``keep`` bytes and never outlives its timeout in a reader.

The stream is Docker's multiplexed attach stream (exec created without a TTY): frames of
an 8-byte header ``[stream, 0, 0, 0, size (uint32 big-endian)]`` then ``size`` bytes
(Docker Engine API, "Attach to a container", stream format). Stdout and stderr are kept
together, in the order they came. What is kept is the LAST ``keep`` bytes: a failing
command says why at its end; everything before is counted and dropped as it arrives.
"""

from __future__ import annotations

import select
import struct
import time
from dataclasses import dataclass
from typing import Protocol

HEADER = 8
CHUNK = 64 * 1024


class Readable(Protocol):
    def fileno(self) -> int: ...


@dataclass(frozen=True)
class Output:
    """What was read: the kept tail, how many payload bytes came in all, and whether the
    deadline ended the reading before the stream did."""

    tail: bytes
    total: int
    timed_out: bool

    @property
    def dropped(self) -> int:
        return self.total - len(self.tail)

    def text(self) -> str:
        """The tail as text, preceded by a line saying how much was left out, if any."""
        text = self.tail.decode(errors="replace")
        if self.dropped:
            return f"[{self.dropped} earlier bytes of output left out]\n{text}"
        return text


class Tail:
    """Demultiplex frames fed in any pieces; keep the last ``keep`` payload bytes."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.kept = bytearray()
        self.total = 0
        self._header = bytearray()
        self._left = 0  # payload bytes of the current frame still to come

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        at = 0
        while at < len(view):
            if self._left == 0:
                take = min(HEADER - len(self._header), len(view) - at)
                self._header += view[at : at + take]
                at += take
                if len(self._header) == HEADER:
                    self._left = struct.unpack(">BxxxL", self._header)[1]
                    self._header.clear()
                continue
            take = min(self._left, len(view) - at)
            self._keep(view[at : at + take])
            at += take
            self._left -= take

    def _keep(self, payload: memoryview) -> None:
        self.total += len(payload)
        if len(payload) >= self.keep:
            self.kept[:] = payload[len(payload) - self.keep :]
            return
        self.kept += payload
        if len(self.kept) > self.keep:
            del self.kept[: len(self.kept) - self.keep]


def _recv(sock: object, n: int) -> bytes:
    if hasattr(sock, "recv"):
        return bytes(sock.recv(n))
    return bytes(sock.read(n) or b"")  # type: ignore[attr-defined]


def buffered(sock: object) -> bytes:
    """What the HTTP client already read past the attach response's headers.

    docker-py hands back the raw socket under ``http.client``'s buffered reader
    (``exec_start(socket=True)``); when the command printed before the client read the
    headers (a fast command on a busy server), its first frames came in the same read and
    sit in that reader's buffer, where a read of the raw socket never sees them: the
    output was lost (docker/docker-py#3332, #2042). This takes them out without waiting:
    the socket is non-blocking for the one ``read1``, which returns the buffer when it
    holds anything and otherwise at most what the socket has now. ``b""`` for a socket
    that is not docker-py's (no reader to drain)."""
    response = getattr(sock, "_response", None)
    reader = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    raw_sock = getattr(sock, "_sock", None)
    if reader is None or raw_sock is None or not hasattr(reader, "read1"):
        return b""
    timeout = raw_sock.gettimeout()
    raw_sock.settimeout(0)
    try:
        return bytes(reader.read1(CHUNK) or b"")
    except BlockingIOError:
        return b""
    finally:
        raw_sock.settimeout(timeout)


def read(sock: Readable, keep: int, deadline: float | None, first: bytes = b"") -> Output:
    """Read ``sock`` (the raw attach socket) until it ends or ``deadline`` (a
    ``time.monotonic()`` value; None: no deadline) passes, after ``first`` (the bytes
    already read from it: ``buffered``). The caller closes ``sock``."""
    tail = Tail(keep)
    tail.feed(first)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    while True:
        wait_ms: float | None = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return Output(bytes(tail.kept), tail.total, True)
            wait_ms = left * 1000
        if not poller.poll(wait_ms):
            continue  # the deadline check above ends it
        data = _recv(sock, CHUNK)
        if not data:
            return Output(bytes(tail.kept), tail.total, False)
        tail.feed(data)
