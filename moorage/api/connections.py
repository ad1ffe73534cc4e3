"""The HTTP connections under the API: uvicorn's h11 protocol, with the deadlines and
bounds no client can hold open (issue 12: nothing unauthenticated wears the server
down).

uvicorn starts no timer while a request's head is arriving, and none for a body still
arriving after its answer; a connection that sends nothing, or half a head, stayed open
for ever, and enough of them used up the process's file descriptors (one tester held
20,000 and ``/api/healthz`` went unanswered). Here:

- ``HEADER_SECONDS``: from a connection's start, or the end of its previous answer, to
  the end of the next request's head. Past it the connection is closed, as Go's
  ``http.Server.ReadHeaderTimeout`` and nginx's ``client_header_timeout`` do.
- ``DRAIN_SECONDS``: a body still arriving after the answer went out (a route that
  refused before reading it). A body the app reads is bounded by ``limits.BodyLimit``.
- ``PER_ADDRESS`` open connections per client address, and ``max_connections`` in all
  (from the file descriptors the process may open): past either, the connection gets a
  503 ``busy`` answer in Moorage's error shape and is closed before any request is read.
- A request h11 cannot parse gets 400 ``bad_request`` in Moorage's error shape, not
  uvicorn's plain text.

Bounds on what a request holds once its head is in (header count and size, URL, body)
are ASGI middleware: ``limits.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import Counter
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from moorage.errors import error_body

log = logging.getLogger("moorage.api")

HEADER_SECONDS = 15.0
DRAIN_SECONDS = 5.0
PER_ADDRESS = 128
TICK_SECONDS = 1.0
SPARE_FDS = 512
"""File descriptors kept for everything else (database, Docker, archives, Caddy)."""


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one (many systems start services at
    1,024, which about a thousand idle sockets use up); the connections this process
    may hold then: the new soft limit minus ``SPARE_FDS``, at least 64."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return max(64, soft - SPARE_FDS)


def _answer(status: int, reason: bytes, code: str, message: str, extra: bytes = b"") -> bytes:
    body = json.dumps(error_body(code, message)).encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n%s\r\n" % (status, reason, len(body), extra)
    ) + body


BUSY = _answer(
    503,
    b"Service Unavailable",
    "busy",
    "the server has too many open connections; try again in a moment",
    b"retry-after: 5\r\n",
)


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and bounds of the module docstring.

    ``max_connections`` is set once by ``serve`` (``raise_fd_limit``); the per-address
    counts are shared by every connection of the process (one event loop)."""

    max_connections: ClassVar[int] = 4096
    per_address: ClassVar[int] = PER_ADDRESS
    header_seconds: ClassVar[float] = HEADER_SECONDS
    drain_seconds: ClassVar[float] = DRAIN_SECONDS
    _by_address: ClassVar[Counter[str]] = Counter()

    _address: str | None = None
    _phase: tuple[Any, Any] | None = None
    _since = 0.0
    _tick: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        if (
            len(self.connections) > self.max_connections
            or self._by_address[address] >= self.per_address
        ):
            self.connections.discard(self)
            transport.write(BUSY)
            transport.close()
            return
        self._address = address
        self._by_address[address] += 1
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if self._address is not None:
            self._by_address[self._address] -= 1
            if self._by_address[self._address] <= 0:
                del self._by_address[self._address]
            self._address = None
        super().connection_lost(exc)

    def _limit(self, phase: tuple[Any, Any]) -> float | None:
        """Seconds a connection may stay in ``phase`` (their state, our state): a head
        still to come, or a body still arriving after the answer; None while the app
        works on a request or reads its body."""
        theirs, ours = phase
        if theirs is h11.IDLE:
            return self.header_seconds
        if theirs is h11.SEND_BODY and ours in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            return self.drain_seconds
        return None

    def _watch(self) -> None:
        self._tick = None
        if self.transport.is_closing():
            return
        phase = (self.conn.their_state, self.conn.our_state)
        now = self.loop.time()
        if phase != self._phase:
            self._phase, self._since = phase, now
        limit = self._limit(phase)
        if limit is not None and now - self._since >= limit:
            self.transport.close()
            return
        self._tick = self.loop.call_later(TICK_SECONDS, self._watch)

    def on_response_complete(self) -> None:
        self._phase = None  # a new wait for a head starts now, however soon the last ended
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """A request h11 could not parse: 400 in Moorage's error shape (uvicorn answers
        plain text), then the connection is closed."""
        self.transport.write(
            _answer(400, b"Bad Request", "bad_request", f"invalid HTTP request: {msg}")
        )
        self.transport.close()
