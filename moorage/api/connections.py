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
- A body still arriving after its answer went out (a route that refused before reading
  it) ends the connection at once; uvicorn drained it, parsing each chunk on the event
  loop, and a stream of one-byte chunks held the loop for seconds. A chunked body whose
  chunks average under ``MIN_CHUNK`` bytes, past ``FREE_CHUNKS`` of them, is refused
  for the same reason. A body the app reads is bounded by ``limits.BodyLimit``.
- ``SEND_SECONDS``: an answer the client stopped reading is cut, and a connection
  closed with part of its answer unread is dropped (``abort``) that long after:
  asyncio's ``close`` waits for the client to read what is left, and a client that
  keeps its window shut never does (attacker pass F held 1,536 connections, every
  descriptor the server had, for as long as it liked).
- ``PER_ADDRESS`` open connections per client address (an IPv6 client is its /64,
  ``security.logins.address_key``), and an equal share of ``max_connections`` (from the
  file descriptors the process may open) for each address holding some, never under
  ``MIN_SHARE`` (a trusted proxy, ``MOORAGE_TRUSTED_PROXIES``, stands for many clients:
  neither applies to it): past either,
  the connection gets a 503 ``busy`` answer in Moorage's error shape and is closed
  before any request is read. When all are taken, a connection only waiting on its
  client (``_waiting``: no whole head, between requests or before the first; a body
  its client has sent nothing of for ``QUIET_SECONDS``, or less than
  ``MIN_BODY_RATE`` a second of; an answer it has not read for ``QUIET_SECONDS``; or
  one already closed) is dropped (``abort``, so its descriptor is free at once) to let
  a new one in:
  one of the address holding the most, or when every address holds about as many (many
  addresses, one connection each), of ``SAMPLE`` connections the waiting one heard from
  longest ago.
  ``max_connections`` is at most ``MAX_CONNECTIONS``, and half the file descriptors
  left: a connection sending a file (the Swagger assets, the UI, an archive) holds its
  file open too (attacker pass F: 1,536 stalled asset downloads under a limit of 2,048
  descriptors, and the server could open no file: ``EMFILE``).
- ``MAX_AHEAD``: requests sent ahead of their answers (pipelined) past this many bytes
  end the connection with a 400: uvicorn reads the socket again at each answer, and
  h11 keeps whatever comes, so one client writing requests without pause grew the
  server by a gigabyte in 20 s (attacker pass E). Judged after any whole request
  (``_ANSWERING``): judged only at ``DONE``, requests asking to upgrade were kept
  whatever came behind them. No browser pipelines.
- A connection that is not trusted (no request on it was vouched for) is not read
  while its address is in debt to ``pacing.Buckets``: its next request waits in the
  kernel, unparsed, until the address has a token again (``_held``; ``pacing.py``).
- A request h11 cannot parse gets 400 ``bad_request`` in Moorage's error shape, not
  uvicorn's plain text.

Bounds on what a request holds once its head is in (header count and size, URL, body)
are ASGI middleware: ``limits.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import json
import logging
import re
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import h11
from h11._state import MIGHT_SWITCH_PROTOCOL  # h11 has it, but not in ``h11.__all__``
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.h11_impl import H11Protocol

from moorage import metrics
from moorage.api.limits import MAX_HEADERS
from moorage.errors import error_body
from moorage.security.logins import address_key

if TYPE_CHECKING:
    from moorage.api.pacing import Buckets

log = logging.getLogger("moorage.api")

HEADER_SECONDS = 15.0
SEND_SECONDS = 60.0
"""An answer the client stopped reading (the transport's buffer full, writing paused)
this long is cut, as nginx's ``send_timeout``: a slow reader held a 6 MB answer each."""
FREE_CHUNKS = 256
MIN_CHUNK = 256
"""Past ``FREE_CHUNKS`` body data events, their average size must be this many bytes
(``GuardedH11._counted``; a read of the socket is one event for a sized body)."""
PER_ADDRESS = 128
MIN_SHARE = 8
"""The fewest connections an address's share is, however many addresses hold some: the
share fell to one when many held one each (attacker pass G: 700 addresses holding an idle
connection each turned away any client's second one, a browser's or an admin's listing
while a webhook came in from the same address). The total is still ``max_connections``,
kept by eviction (``_admit``)."""
QUIET_SECONDS = 1.0
"""A body its client has sent nothing of for this long is only waiting (``_waiting``):
one byte of a body held its connection out of reach of eviction for the body's 30 s
(attacker pass E). An answer its client has not read for this long is only waiting too."""
MIN_BODY_RATE = 4096
"""Bytes a second below which a body is only waiting, judged over windows of
``QUIET_SECONDS`` (the last whole one, or the current one once it is that long): one
byte every 0.9 s was never quiet for a second, and 1,536 such bodies turned every new
client away (attacker pass F)."""
SAMPLE = 64
"""Connections looked at for one to close when every address holds about as many: a
bounded look, not a scan of all of them for each new connection."""
MAX_AHEAD = 64 * 1024
MAX_HEAD_BYTES = 32 * 1024
"""The longest request head h11 is given to parse: ``limits.RequestHead`` takes at most
16 KiB of names and values, a 2 KiB path and an 8 KiB query (about 27 KiB in all)."""
MAX_HEAD_LINES = 2 * MAX_HEADERS + 2
"""The most lines of a request head h11 is given to parse: the request line and
``MAX_HEADERS`` fields, each of them folded once. h11 parses a head line by line in
Python, about 3 us a line: a head that arrived whole in one read (uvloop reads up to
256 KiB) was parsed whatever its size, and ``RequestHead`` refused it only after. One
client sending 256 KiB heads of empty fields held the event loop about 0.2 s each
(attacker pass I)."""
MAX_CONNECTIONS = 10_000
"""The most connections at once, whatever the open-file limit (systemd's hard limit is
often 524,288)."""
SPARE_FDS = 512
"""File descriptors kept for everything else (database, Docker, archives, Caddy)."""

_CURRENT: contextvars.ContextVar[GuardedH11 | None] = contextvars.ContextVar(
    "moorage_connection", default=None
)


_CREDENTIALS = (b"\nauthorization:", b"moorage_session=")
_HEAD_END = re.compile(b"\n\r?\n")
"""The end of a head as h11 finds it (a bare LF ends a line too)."""
_LINE = re.compile(b"\r?\n")
_ANSWERING = (h11.DONE, h11.MUST_CLOSE, MIGHT_SWITCH_PROTOCOL)
"""h11's states for a client whose request is whole (``MUST_CLOSE``: the last one, as
HTTP/1.0 or ``Connection: close`` asks; ``MIGHT_SWITCH_PROTOCOL``: one asking to upgrade,
which no route does): its answer is still owed (``eof_received``)."""
_REQUEST_START = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?: |\Z)")
"""What a request's first read starts with, a method (or the start of one): such a read
is kept until its head is whole (``_held``); anything else goes to h11 at once."""


@functools.lru_cache(maxsize=8)
def _trusted_hosts(allowed: str) -> _TrustedHosts:
    return _TrustedHosts(allowed)


def _forwarder(config: Any, peer: str | None) -> _TrustedHosts | None:
    """uvicorn's trusted proxies when ``peer`` is one of them and uvicorn reads their
    ``X-Forwarded-For`` (``proxy_headers``), else None."""
    if peer is None or config is None or not getattr(config, "proxy_headers", False):
        return None
    allowed = config.forwarded_allow_ips
    trusted = _trusted_hosts(allowed if isinstance(allowed, str) else ",".join(allowed))
    return trusted if peer in trusted else None


def head_fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A raw request head's request line and its ``(lower-case name, stripped value)``
    header fields, read as h11 reads lines (a bare LF ends one; the head ends at the
    first empty line). For judging a head before h11 parses it: ``_held``'s address
    (``_paced_address``) and credentials (``cache.raw_vouching``)."""
    lines = _LINE.split(_HEAD_END.split(head, 1)[0])
    fields = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.strip().lower(), value.strip()))
    return lines[0], fields


def names_a_credential(data: bytes) -> bool:
    """``GuardedH11.vouchable`` until ``moorage serve`` sets the store's check
    (``cache.raw_vouching``): whether the start of a request names something
    ``cache.vouching`` may accept at all (an ``Authorization`` header, the session
    cookie, a POST to a webhook URL)."""
    if data.startswith(b"POST /hooks/"):
        return True
    head = data.lower()
    return any(name in head for name in _CREDENTIALS)


def current() -> GuardedH11 | None:
    """The connection the running request came on (its ASGI task was made while the
    connection parsed it: ``GuardedH11.handle_events``), or None outside one."""
    return _CURRENT.get()


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one (many systems start services at
    1,024, which about a thousand idle sockets use up); the connections this process
    may hold then: half of the new soft limit minus ``SPARE_FDS`` (each may hold a file
    it is sending as well as its socket), at least 64."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return max(64, min(MAX_CONNECTIONS, (soft - SPARE_FDS) // 2))


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


def _last_heard(connection: GuardedH11) -> float:
    return connection._heard


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and bounds of the module docstring.

    ``max_connections`` is set once by ``serve`` (``raise_fd_limit``); the per-address
    connections are shared by every connection of the process (one event loop)."""

    max_connections: ClassVar[int] = 4096
    per_address: ClassVar[int] = PER_ADDRESS
    header_seconds: ClassVar[float] = HEADER_SECONDS
    send_seconds: ClassVar[float] = SEND_SECONDS
    _by_address: ClassVar[dict[str, set[GuardedH11]]] = {}
    buckets: ClassVar[Buckets | None] = None
    """The requests each address may send unvouched (``pacing.py``); None: any number."""

    vouchable: ClassVar[Callable[[bytes], bool]] = names_a_credential
    """Whether a request's first bytes name a credential that may be accepted: such a
    request is read whatever its address owes (``_held``)."""

    trusted = False
    """A request on this connection was vouched for (``pacing.Pace``): never held."""

    _address: str | None = None
    _head_timer: asyncio.TimerHandle | None = None
    _send_timer: asyncio.TimerHandle | None = None
    _chunks = 0  # body data events of the current request
    _payload = 0  # their bytes
    _heard = 0.0  # time.monotonic() of the last bytes from the client
    _window_at = 0.0  # time.monotonic() the current window of body bytes opened
    _window_bytes = 0  # body bytes in it
    _slow = False  # the last whole window was under MIN_BODY_RATE
    _paused = 0.0  # time.monotonic() the client stopped reading its answer, or 0.0
    _refusal: str | None = None  # why this class ended the request (uvicorn says no more)
    _forwarder: _TrustedHosts | None = None  # uvicorn's trusted proxies, when this peer is one
    _partial: bytearray | None = None  # the start of a head, kept until it is whole (_held)
    _stash = b""  # what arrived while the connection was held, fed to h11 at its release
    _stash_from = 0  # of it, the read that began the hold (MAX_AHEAD bounds what came after)
    _release_timer: asyncio.TimerHandle | None = None
    _head_seen = 0  # bytes of the next head in h11's buffer already looked at (_bound_head)
    _head_lines = 0  # line ends among them
    _ended = False  # the client ended its side (EOF) with a whole request unanswered
    _refused_as: tuple[int, bytes, str] = (400, b"Bad Request", "bad_request")
    """The answer ``send_400_response`` gives: a head over its bounds is 414 or 431."""
    timeout_keep_alive_task: asyncio.TimerHandle | None = None  # uvicorn's, set in __init__

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = address_key(self.client[0]) if self.client else ""
        forwarder = _forwarder(self.config, self.client[0] if self.client else None)
        if not self._admit(address, proxy=forwarder is not None):
            self.connections.discard(self)
            transport.write(BUSY)
            transport.close()
            return
        self._address = address
        self._forwarder = forwarder
        self._by_address.setdefault(address, set()).add(self)
        self._heard = time.monotonic()
        self._watch_events()
        self._arm_head()

    def _admit(self, address: str, *, proxy: bool = False) -> bool:
        """Whether a new connection from ``address`` may stay: under ``per_address`` and
        under the address's fair share of ``max_connections`` (an equal part for each
        address holding some, itself included, and at least ``MIN_SHARE``). When all are
        taken, a connection only waiting on its client (``_waiting``) is closed for it:
        one of the address holding the most when it holds more than this one's would,
        else of the first ``SAMPLE`` connections the one heard from longest ago (the
        first that waited was often one a client had just opened, its head not yet read:
        an idle flood from 500 addresses cut 4 in 593 listings, attacker pass H).
        Neither a few addresses holding every connection nor many holding one each can
        shut a new one out while some connection only waits.

        A ``proxy`` (a peer uvicorn trusts for ``X-Forwarded-For``) stands for every client
        behind it: neither bound of one address applies to it, only ``max_connections``
        and the eviction. As one address, 128 of its connections were every client's:
        a client in debt sending 128 requests at once through it had each held
        (``_held``) with its connection, and every other client, logged in or not, got
        503 ``busy`` for up to a minute (attacker pass I)."""
        mine = self._by_address.get(address, set())
        if not proxy:
            if len(mine) >= self.per_address:
                return False
            holders = len(self._by_address) + (0 if mine else 1)
            if len(mine) >= max(MIN_SHARE, self.max_connections // holders):
                return False
        if len(self.connections) <= self.max_connections:
            return True
        victim = None
        if len(self._by_address) <= SAMPLE:  # few holders: the one holding the most yields
            most = max(self._by_address.values(), key=len, default=set())
            if len(most) > len(mine) + 1:
                victim = next((c for c in most if c._waiting()), None)
        if victim is None:  # the one heard from longest ago, not one just opened
            others = (c for c in self.connections if isinstance(c, GuardedH11) and c is not self)
            sample = itertools.islice((c for c in others if c._address is not None), SAMPLE)
            victim = min((c for c in sample if c._waiting()), key=_last_heard, default=None)
        if victim is None:
            return False
        victim._forget()  # counted out now: its transport closes on the next turn
        victim.transport.abort()  # not close(): that waits for the client to read the rest
        return True

    def _waiting(self) -> bool:
        """Whether this connection is only waiting on its client: no whole head (before
        its first request or between two; attacker pass E held idle keep-alive
        connections with a partial next head), or a body its client has sent nothing of
        for ``QUIET_SECONDS`` (a POST head alone, or with one byte of its body, held a
        connection for the 30 s of ``BodyLimit``: attacker passes D and E), or arriving
        slower than ``MIN_BODY_RATE`` (a byte every 0.9 s: pass F); an answer its client
        has not read for ``QUIET_SECONDS``, or a connection already closed that only
        an unread answer holds open (pass F). A request whose head and body are in, and
        whose answer goes out as fast as it is made, is being answered: never."""
        if self.transport.is_closing():
            return True
        now = time.monotonic()
        if self._paused and now - self._paused >= QUIET_SECONDS:
            return True
        theirs = self.conn.their_state
        if theirs is h11.IDLE:
            return True
        if theirs is not h11.SEND_BODY:
            return False
        window = now - self._window_at
        return (
            now - self._heard >= QUIET_SECONDS
            or self._slow
            or (window >= QUIET_SECONDS and self._window_bytes < MIN_BODY_RATE * window)
        )

    def data_received(self, data: bytes) -> None:
        """Note when the client was last heard (``_waiting``), and end a connection that
        sent more than ``MAX_AHEAD`` bytes of requests ahead of their answers."""
        self._heard = time.monotonic()
        read = self._held(data)
        if not read:  # held; and never b"" to h11, which reads it as the client's end
            return
        super().data_received(read)
        if (
            self.conn.their_state in _ANSWERING
            and len(self.conn.trailing_data[0]) > MAX_AHEAD
            and not self.transport.is_closing()
        ):
            self._refusal = (
                f"more than {MAX_AHEAD // 1024} KiB of requests sent ahead of their answers"
            )
            self.send_400_response(self._refusal)

    def _held(self, data: bytes) -> bytes | None:
        """What of ``data`` h11 reads now, or None: it waits unparsed. It waits when the
        connection is between requests, is not trusted, the address its request is
        counted against is in debt (``pacing.Buckets.debt``; ``_paced_address``), and
        the whole head names no credential that may be accepted (``vouchable``): it
        could only be refused. Reading stops until the debt is paid; what came
        meanwhile (at most ``MAX_AHEAD`` bytes, or the connection is dropped) is parsed
        then. A request that names a credential is parsed, and vouched for or refused by
        ``Pace``: a logged-in browser behind the same address as a flood is not held.

        A head is judged whole: its start is kept here (``_partial``, at most
        ``MAX_AHEAD`` bytes; reading goes on, the head deadline runs) until its end
        comes, whatever the address owes when it starts. Judged by its first read alone,
        a head whose ``Authorization`` or ``Cookie`` line came in a second read was held
        (attacker pass H); judged by its last read alone, a head split where the address
        fell into debt was held for want of the credential in its first read, and a head
        a trusted proxy wrote in two parts (Go's ``http.Transport``, Caddy's, writes
        4 KiB at a time) was counted against the proxy, its ``X-Forwarded-For`` in the
        first part: a flood of long heads through Caddy was never held (attacker pass
        I). While a head
        is held, the keep-alive and head deadlines are off (the head is in): they closed
        a held connection unanswered after 5 s or 15 s, its request lost."""
        if self._release_timer is None:
            if (
                self.trusted
                or self.buckets is None
                or self._address is None
                or self.conn.their_state is not h11.IDLE
                or self.transport.is_closing()
            ):
                return self._flush(data)
            if self._partial is None:
                if _HEAD_END.search(data) is None:
                    if not _REQUEST_START.match(data):
                        return data  # not a request's start (a TLS hello): h11 answers it
                elif self._forwarder is None and not self.buckets.debt(self._address):
                    return data
            partial = self._partial if self._partial is not None else bytearray()
            seen = max(0, len(partial) - 2)  # an end may start in what came before
            partial += data
            end = _HEAD_END.search(partial, seen)
            if end is None:
                if len(partial) > MAX_HEAD_BYTES:  # no head is this long: h11 refuses it
                    self._partial = None
                    return bytes(partial)
                self._partial = partial
                # the client is sending a head: its deadline runs (_head_due), not uvicorn's
                self._unset_keepalive_if_required()
                return None
            self._partial = None
            head = bytes(partial)
            if end.start() > MAX_HEAD_BYTES or head.count(b"\n", 0, end.start()) > MAX_HEAD_LINES:
                return head  # not judged (each line costs): h11 refuses it unparsed
            wait = self.buckets.debt(self._paced_address(head))
            if not wait or type(self).vouchable(head):
                return head
            self.transport.pause_reading()
            metrics.PACED.labels("held").inc()
            self._release_timer = self.loop.call_later(wait, self._release)
            self._unset_keepalive_if_required()
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._stash_from = len(head)
            data = head
        self._stash += data
        if len(self._stash) - self._stash_from > MAX_AHEAD:
            self._release_timer.cancel()
            self._release_timer = None
            self.transport.abort()
        return None

    def _flush(self, data: bytes) -> bytes:
        """``data`` after the start of a head kept in ``_partial``, if any."""
        if self._partial is None:
            return data
        partial, self._partial = self._partial, None
        return bytes(partial + data)

    def _paced_address(self, head: bytes) -> str:
        """The address ``pacing.Pace`` counts a request with this head against: the
        connection's, or behind a proxy uvicorn trusts (``forwarded_allow_ips``), the one
        its ``X-Forwarded-For`` names, as uvicorn's ``ProxyHeadersMiddleware`` reads it.
        Judged by the proxy's own address, every visitor it forwards was held while
        anything sent from it without the header (a local health check, a script) was
        in debt, and a flood it forwarded was never held (attacker pass H)."""
        assert self._address is not None
        trusted = self._forwarder
        if trusted is None:
            return self._address
        values = [value for name, value in head_fields(head)[1] if name == b"x-forwarded-for"]
        if not values:
            return self._address
        host, _port = trusted.get_trusted_client_address(b", ".join(values).decode("latin-1"))
        return address_key(host) if host else self._address

    def _release(self) -> None:
        self._release_timer = None
        if self.transport.is_closing():
            return
        data, self._stash, self._stash_from = self._stash, b"", 0
        self.transport.resume_reading()
        if data:
            self.data_received(data)

    def handle_events(self) -> None:
        """uvicorn's, with this connection as ``current()`` for the request tasks it
        starts (``pacing.Pace`` marks it trusted)."""
        token = _CURRENT.set(self)
        try:
            super().handle_events()
        finally:
            _CURRENT.reset(token)

    def _forget(self) -> None:
        self.connections.discard(self)
        if self._address is not None:
            mine = self._by_address.get(self._address, set())
            mine.discard(self)
            if not mine:
                self._by_address.pop(self._address, None)
            self._address = None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._send_timer, self._release_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._send_timer = self._release_timer = None
        self._forget()
        super().connection_lost(exc)

    def _watch_events(self) -> None:
        """Every event h11 parses passes ``_counted``; before it parses a head, the head's
        size is bounded (``_bound_head``)."""
        next_event = self.conn.next_event

        def watched() -> Any:
            if self.conn.their_state is h11.IDLE:
                self._bound_head()
            return self._counted(next_event())

        self.conn.next_event = watched  # type: ignore[method-assign]

    def _bound_head(self) -> None:
        """Before h11 parses a head: refuse one over ``MAX_HEAD_BYTES`` or
        ``MAX_HEAD_LINES`` unparsed (h11 bounds a head only while it is incomplete, and
        parses a whole one of any size, a line at a time). Looks at each byte of h11's
        buffer once: a head trickled a byte at a time costs no rescan."""
        if self._refused_as[0] != 400:  # refused already: h11 never parses that head
            raise h11.RemoteProtocolError(self._refusal or "")
        buffer = getattr(getattr(self.conn, "_receive_buffer", None), "_data", None)
        if not isinstance(buffer, bytearray) or len(buffer) <= self._head_seen:
            return
        start = self._head_seen
        end = _HEAD_END.search(buffer, max(0, start - 2))
        stop = end.start() if end is not None else len(buffer)
        self._head_lines += buffer.count(b"\n", start, max(start, stop))
        self._head_seen = len(buffer)
        if stop > MAX_HEAD_BYTES or self._head_lines > MAX_HEAD_LINES:
            line = buffer.find(b"\n", 0, MAX_HEAD_BYTES)
            if line == -1:  # as ``RequestHead`` answers a long path or query
                self._refused_as = (414, b"URI Too Long", "uri_too_long")
                self._refusal = f"the request line is over {MAX_HEAD_BYTES // 1024} KiB"
            else:
                self._refused_as = (431, b"Request Header Fields Too Large", "headers_too_large")
                self._refusal = (
                    f"the request head is over {MAX_HEAD_BYTES // 1024} KiB or "
                    f"{MAX_HEAD_LINES} lines"
                )
            raise h11.RemoteProtocolError(self._refusal)

    def _counted(self, event: Any) -> Any:
        """Every event h11 parses passes here. A new request starts the count of its
        body; body data after the answer ends the connection (uvicorn drained it, one
        event per chunk on the event loop: tiny chunks held the loop for seconds); past
        ``FREE_CHUNKS`` chunks, a body whose chunks average under ``MIN_CHUNK`` bytes is
        refused (each chunk costs a parse whatever it carries, and its extension up to
        16 KiB more)."""
        if isinstance(event, h11.Request):
            self._head_seen = self._head_lines = 0  # h11 took the head out of its buffer
            self._chunks = self._payload = self._window_bytes = 0
            self._window_at, self._slow = time.monotonic(), False
        elif isinstance(event, h11.Data):
            if self.cycle is not None and self.cycle.response_complete:
                raise h11.RemoteProtocolError("body data after the answer")
            self._chunks += 1
            self._payload += len(event.data)
            self._count_rate(len(event.data))
            if self._chunks > FREE_CHUNKS and self._payload < self._chunks * MIN_CHUNK:
                self._refusal = (
                    f"the body's chunks average under {MIN_CHUNK} bytes; send larger chunks"
                )
                raise h11.RemoteProtocolError(self._refusal)
        return event

    def _count_rate(self, size: int) -> None:
        """Body bytes in windows of ``QUIET_SECONDS``: a window that closes under
        ``MIN_BODY_RATE`` marks the body slow until one closes above it. The rate of the
        whole body let a burst buy seconds of trickling (attacker pass F)."""
        now = time.monotonic()
        self._window_bytes += size
        elapsed = now - self._window_at
        if elapsed >= QUIET_SECONDS:
            self._slow = self._window_bytes < MIN_BODY_RATE * elapsed
            self._window_at, self._window_bytes = now, 0

    def _arm_head(self) -> None:
        """Start the wait for a head: ``header_seconds`` from now (the connection's start,
        or the end of its previous answer). One timer per wait, at its deadline, not a
        tick per connection (attacker pass D: 19 us per connection each second)."""
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.header_seconds, self._head_due)

    def _head_due(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._close()  # no head within the deadline

    def _close(self) -> None:
        """Close the transport; if part of an answer is still unsent, drop it
        ``send_seconds`` from now (``close`` waits for the client to read it)."""
        self.transport.close()
        self._linger()

    def _linger(self) -> None:
        """A closed transport still holding unsent bytes is aborted ``send_seconds``
        from now, unless the send timer already runs."""
        if (
            self._send_timer is None
            and self.transport.is_closing()
            and self.transport.get_write_buffer_size()
        ):
            self._send_timer = self.loop.call_later(self.send_seconds, self._send_due)

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._linger()

    def pause_writing(self) -> None:
        """The transport's buffer is full: the client stopped reading (for now)."""
        super().pause_writing()
        self._paused = time.monotonic()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.send_seconds, self._send_due)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._paused = 0.0
        if self._send_timer is not None and not self.transport.is_closing():
            self._send_timer.cancel()
            self._send_timer = None

    def _send_due(self) -> None:
        """A client that stopped reading its answer, or that has not read the rest of
        one after the connection was closed: dropped. ``close`` would wait on it for
        ever, the descriptor and the answer's bytes held (attacker pass F)."""
        self._send_timer = None
        self.transport.abort()

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client ended its side (``shutdown(SHUT_WR)``, as ``nc -N`` or an HTTP/1.0
        client does after its request). With a whole request in and its answer not yet
        out, the connection stays open for the answer, then closes
        (``on_response_complete``): uvicorn returns None, the transport closed at once,
        and the answer was lost. A held request (``_held``) was lost every time: reading
        resumes when it is released, the end is read before its answer is made. A
        request that ends the connection (HTTP/1.0, ``Connection: close``) leaves the
        client's state ``MUST_CLOSE``, not ``DONE``: such a health check
        (an HTTP/1.0 GET piped to ``nc -N``) got no answer."""
        if (
            self.conn.their_state in _ANSWERING
            and self.cycle is not None
            and not self.cycle.response_complete
            and not self.transport.is_closing()
        ):
            self._ended = True
            return True
        return None

    def on_response_complete(self) -> None:
        """After an answer: the wait for the next head, and any request pipelined behind
        it parsed. A connection whose client ended its side closes once no whole
        request is left: closed at the first answer, a second request the client had
        sent before its end was never answered (``printf 'GET..GET..' | nc -N``)."""
        if self.conn.their_state is h11.SEND_BODY:
            self._close()  # answered before its body ended
            return
        self._arm_head()  # a new wait for a head starts now, however soon the last ended
        super().on_response_complete()
        if self._ended and self.conn.their_state not in _ANSWERING:
            self._close()  # nothing more comes: no whole request left to answer
            return
        self._linger()  # uvicorn closed it (``Connection: close``) with bytes unsent

    def send_400_response(self, msg: str) -> None:
        """A request h11 could not parse (or this class refused): 400 in Moorage's error
        shape (uvicorn answers plain text), then the connection is closed; once an
        answer has begun, only closed."""
        if self.cycle is None or not self.cycle.response_started:
            status, reason, code = self._refused_as
            self.transport.write(
                _answer(status, reason, code, f"invalid HTTP request: {self._refusal or msg}")
            )
        self._close()
