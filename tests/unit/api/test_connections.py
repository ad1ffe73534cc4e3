"""``api.connections.GuardedH11._admit``: each address gets an equal share of the
connections, and when all are taken a new address is let in by closing a connection of
the address holding the most that has not sent a head yet (attacker pass C: five
addresses holding every connection turned every new client away)."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import h11
import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from moorage.api.connections import (
    MIN_BODY_RATE,
    MIN_SHARE,
    QUIET_SECONDS,
    SAMPLE,
    SPARE_FDS,
    GuardedH11,
    raise_fd_limit,
)
from tests.loops import run


class _Transport:
    def __init__(self) -> None:
        self.closed = False
        self.aborted = False

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed


def _held(address: str, owner: dict[str, set[Any]], connections: set[Any]) -> GuardedH11:
    c = GuardedH11.__new__(GuardedH11)
    c.connections = connections
    c.conn = SimpleNamespace(their_state=h11.IDLE)  # type: ignore[assignment]
    c.cycle = None  # type: ignore[assignment]
    c.transport = _Transport()  # type: ignore[assignment]
    c._address = address
    owner.setdefault(address, set()).add(c)
    connections.add(c)
    return c


def _newcomer(connections: set[Any]) -> GuardedH11:
    c = GuardedH11.__new__(GuardedH11)
    c.connections = connections
    connections.add(c)  # as uvicorn's connection_made does before ours decides
    return c


def test_a_new_address_gets_in_when_a_few_hold_everything(monkeypatch: Any) -> None:
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 20)
    held = [_held(f"10.0.0.{i % 4}", by_address, connections) for i in range(20)]
    new = _newcomer(connections)
    assert new._admit("192.0.2.7")
    assert sum(c.transport.closed for c in held) == 1  # type: ignore[attr-defined]
    assert sum(len(s) for s in by_address.values()) == 19  # and counted out at once
    assert len(connections) == 20


def test_an_address_past_its_share_is_refused(monkeypatch: Any) -> None:
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 20)
    for _ in range(10):
        _held("10.0.0.1", by_address, connections)
    _held("10.0.0.2", by_address, connections)
    assert not _newcomer(connections)._admit("10.0.0.1")  # 10 of 20, two holders
    assert _newcomer(connections)._admit("10.0.0.2")


def test_connections_that_sent_a_request_are_never_closed_for_another(monkeypatch: Any) -> None:
    """A request whose head and body are in is being answered (h11: theirs ``DONE``), as
    is a body still arriving: neither is closed, however few or many addresses hold them."""
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 4)
    for i in range(4):
        busy = _held(f"10.0.0.{i % 2}", by_address, connections)
        busy.conn = SimpleNamespace(their_state=h11.DONE if i < 2 else h11.SEND_BODY)  # type: ignore[assignment]
        busy.cycle = object()  # type: ignore[assignment]
        busy._heard = busy._window_at = time.monotonic()  # its body is arriving now
    assert not _newcomer(connections)._admit("192.0.2.7")


def test_a_body_its_client_stopped_sending_is_evicted_too(monkeypatch: Any) -> None:
    """A POST head with a length and no body (attacker pass D), or with one byte of its
    body (pass E), kept its connection out of reach for the body's 30 s: a body its
    client has sent nothing of for ``QUIET_SECONDS`` is only waiting too."""
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 4)
    held = []
    for i in range(4):
        c = _held("10.0.0.1" if i < 3 else "10.0.0.2", by_address, connections)
        c.conn = SimpleNamespace(their_state=h11.SEND_BODY)  # type: ignore[assignment]
        c.cycle = object()  # type: ignore[assignment]
        c._heard = time.monotonic() - QUIET_SECONDS  # one byte, then nothing
        held.append(c)
    held[0]._heard = held[0]._window_at = time.monotonic()  # its body is arriving
    assert _newcomer(connections)._admit("192.0.2.7")
    assert [c.transport.closed for c in held[:3]].count(True) == 1  # type: ignore[attr-defined]
    assert not held[0].transport.closed  # type: ignore[attr-defined]


def test_an_idle_keep_alive_connection_is_evicted(monkeypatch: Any) -> None:
    """After one answered request uvicorn keeps its cycle, and a partial next head
    held the connection for the head's 15 s out of reach (attacker pass E): with no
    whole head in, a connection is only waiting, whatever its past requests."""
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 3)
    held = [_held("10.0.0.1", by_address, connections) for _ in range(3)]
    for c in held:
        c.cycle = SimpleNamespace(response_complete=True)  # type: ignore[assignment]
    assert _newcomer(connections)._admit("192.0.2.7")
    assert sum(c.transport.closed for c in held) == 1  # type: ignore[attr-defined]


def test_many_addresses_holding_one_each_do_not_shut_a_new_one_out(monkeypatch: Any) -> None:
    """620 addresses with one partial head each filled the server, and no address held
    more than the newcomer would, so none was closed (attacker pass E): past ``SAMPLE``
    holders, one of the first ``SAMPLE`` connections that only waits is closed."""
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    count = SAMPLE * 4
    monkeypatch.setattr(GuardedH11, "max_connections", count)
    held = [_held(f"10.0.{i // 250}.{i % 250}", by_address, connections) for i in range(count)]
    assert _newcomer(connections)._admit("192.0.2.7")
    assert sum(c.transport.closed for c in held) == 1  # type: ignore[attr-defined]
    # Every one being answered: nothing is closed, and the look stays bounded.
    for c in held:
        c.conn = SimpleNamespace(their_state=h11.DONE)  # type: ignore[assignment]
    assert not _newcomer(connections)._admit("192.0.2.8")


def test_an_evicted_connection_is_dropped_at_once(monkeypatch: Any) -> None:
    """Eviction aborts: ``close`` waits for the client to read what its transport still
    holds, and a connection counted out but never read held its descriptor for ever."""
    by_address: dict[str, set[Any]] = {}
    connections_: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 3)
    held = [_held("10.0.0.1", by_address, connections_) for _ in range(3)]
    assert _newcomer(connections_)._admit("192.0.2.7")
    assert sum(c.transport.aborted for c in held) == 1  # type: ignore[attr-defined]


def test_a_client_that_stopped_reading_its_answer_is_evicted(monkeypatch: Any) -> None:
    """A request answered to a client that reads nothing (its window shut) held its
    connection out of reach for ever (attacker pass F: 12 addresses of 128 such
    connections each turned every client away): an answer unread for
    ``QUIET_SECONDS`` is only waiting, and so is a connection already closed that only
    its unread answer holds open. One whose answer goes out is not."""
    by_address: dict[str, set[Any]] = {}
    connections_: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 4)
    held = []
    for i in range(4):
        c = _held("10.0.0.1" if i < 3 else "10.0.0.2", by_address, connections_)
        c.conn = SimpleNamespace(their_state=h11.DONE)  # type: ignore[assignment]
        c.cycle = object()  # type: ignore[assignment]
        held.append(c)
    assert not _newcomer(connections_)._admit("192.0.2.7")  # all being answered
    held[1]._paused = time.monotonic()  # stopped reading just now: not yet
    assert not _newcomer(connections_)._admit("192.0.2.7")
    held[1]._paused = time.monotonic() - QUIET_SECONDS
    assert _newcomer(connections_)._admit("192.0.2.7")
    assert held[1].transport.aborted  # type: ignore[attr-defined]
    held[3].transport.closed = True  # type: ignore[attr-defined]  # closed, an answer unread
    assert _newcomer(connections_)._admit("192.0.2.8")
    assert held[3].transport.aborted  # type: ignore[attr-defined]
    assert not held[0].transport.closed and not held[2].transport.closed  # type: ignore[attr-defined]


def test_a_body_trickled_below_the_rate_is_evicted(monkeypatch: Any) -> None:
    """One byte of a body every 0.9 s is never quiet for ``QUIET_SECONDS`` (attacker
    pass F: 1,536 of them, and 92% of legitimate requests got 503): a body arriving for
    that long at under ``MIN_BODY_RATE`` a second is only waiting; one arriving faster
    is not."""
    by_address: dict[str, set[Any]] = {}
    connections_: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 2)
    now = time.monotonic()
    held = []
    for sent in (MIN_BODY_RATE * 10, 5):
        c = _held("10.0.0.1", by_address, connections_)
        c.conn = SimpleNamespace(their_state=h11.SEND_BODY)  # type: ignore[assignment]
        c.cycle = object()  # type: ignore[assignment]
        c._heard = now  # a byte just now
        c._window_at = now - 5  # its window opened five seconds ago
        c._window_bytes = sent
        held.append(c)
    assert _newcomer(connections_)._admit("192.0.2.7")
    assert [c.transport.aborted for c in held] == [False, True]  # type: ignore[attr-defined]


def test_a_burst_buys_no_trickling() -> None:
    """The rate is judged per window of ``QUIET_SECONDS``, not over the whole body: a
    burst and then a trickle is slow from the first window that closes under
    ``MIN_BODY_RATE`` (attacker pass F's note), and fast again once one closes above."""
    c = GuardedH11.__new__(GuardedH11)
    c.conn = SimpleNamespace(their_state=h11.SEND_BODY)  # type: ignore[assignment]
    c.transport = SimpleNamespace(is_closing=lambda: False)  # type: ignore[assignment]
    c._paused = 0.0
    now = time.monotonic()
    c._heard = now
    c._window_at, c._window_bytes, c._slow = now - 0.5, 0, False
    c._count_rate(MIN_BODY_RATE * 100)  # a burst, in a window still open
    assert not c._waiting()
    c._window_at = now - QUIET_SECONDS - 0.1  # that window closes with the next byte
    c._count_rate(1)
    assert not c._waiting(), "a fast window closed: not slow"
    c._window_at = time.monotonic() - QUIET_SECONDS - 0.1  # then a byte in a second
    c._count_rate(1)
    assert c._waiting(), "a window closed under the rate: slow"
    c._window_at = time.monotonic() - QUIET_SECONDS - 0.1
    c._count_rate(MIN_BODY_RATE * 10)
    assert not c._waiting(), "fast again"


def test_a_connection_may_hold_a_file_as_well_as_its_socket(monkeypatch: Any) -> None:
    """A stalled download of a static file (a Swagger asset) holds the file open too:
    1,536 of them under a limit of 2,048 descriptors and the server could open no file
    (``EMFILE``, attacker pass F). Two descriptors a connection."""
    monkeypatch.setattr(resource, "getrlimit", lambda _: (2048, 2048))
    assert raise_fd_limit() == (2048 - SPARE_FDS) // 2


async def _guarded_server(app: Any) -> tuple[asyncio.Server, ServerState, int]:
    """A GuardedH11 server of ``app`` on a free port of 127.0.0.1, its state and port."""
    config = uvicorn.Config(app, ws="none", lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    server = await asyncio.get_running_loop().create_server(
        lambda: GuardedH11(config=config, server_state=state, app_state={}), "127.0.0.1", 0
    )
    return server, state, server.sockets[0].getsockname()[1]


async def _stalled_reader(
    monkeypatch: Any, answer: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[asyncio.Server, ServerState, socket.socket]:
    """A GuardedH11 server whose one route answers ``answer``, and a client that asked
    for it and reads nothing (a small window that stays shut)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        step = 64 * 1024  # as a file is sent: writing pauses between chunks
        for at in range(0, len(answer), step):
            more = at + step < len(answer)
            await send(
                {"type": "http.response.body", "body": answer[at : at + step], "more_body": more}
            )

    monkeypatch.setattr(GuardedH11, "_by_address", {})
    monkeypatch.setattr(GuardedH11, "send_seconds", 0.5)
    monkeypatch.setattr(GuardedH11, "header_seconds", 0.3)
    server, state, port = await _guarded_server(app)
    loop = asyncio.get_running_loop()
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
    client.setblocking(False)
    await loop.sock_connect(client, ("127.0.0.1", port))
    await loop.sock_sendall(client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return server, state, client


@pytest.mark.parametrize(
    "size, headers",
    [
        (8 * 1024 * 1024, []),  # past the buffer's high mark: writing paused, then cut
        (600 * 1024, [(b"connection", b"close")]),  # below it on the sender's side: closed, unread
    ],
    ids=["paused", "closed-unread"],
)
def test_an_answer_never_read_frees_its_connection(
    monkeypatch: Any, size: int, headers: list[tuple[bytes, bytes]]
) -> None:
    """The send deadline closed a connection whose client stopped reading, and asyncio's
    ``close`` waits for the rest to be read: it never was, and the connection, its
    descriptor and the answer's bytes stayed (attacker pass F held 1,536 past the 60 s
    deadline, every one the server had). Past ``send_seconds`` it is dropped: the
    server forgets it (``connection_lost``)."""

    async def check() -> None:
        server, state, client = await _stalled_reader(monkeypatch, b"x" * size, headers)
        try:
            deadline = time.monotonic() + 2
            while not state.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the answer goes out until the client's window shuts
            assert len(state.connections) == 1
            deadline = time.monotonic() + 5
            while state.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert not state.connections, "a connection whose answer was never read stayed"
        finally:
            client.close()
            for c in list(state.connections):
                c.transport.abort()
            server.close()
            await server.wait_closed()
            await asyncio.sleep(0.1)

    run(check())


def test_many_addresses_do_not_shrink_a_share_below_a_few_connections(monkeypatch: Any) -> None:
    """An equal share of ``max_connections`` for each address holding some fell to one
    connection when many addresses held one each (attacker pass G: 700 loopback addresses,
    one idle connection each, and any client with two at once got 503 ``busy``: a
    browser, or an admin listing while a webhook came in from the same address). A
    share is never under ``MIN_SHARE``; the total stays bounded by eviction."""
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 100)
    for i in range(80):
        _held(f"10.0.{i // 250}.{i % 250}", by_address, connections)
    for _ in range(MIN_SHARE - 1):
        _held("192.0.2.7", by_address, connections)
    assert _newcomer(connections)._admit("192.0.2.7")  # its MIN_SHARE-th, room left
    _held("192.0.2.7", by_address, connections)
    assert not _newcomer(connections)._admit("192.0.2.7")  # past MIN_SHARE: its share


class _Readable(_Transport):
    def __init__(self) -> None:
        super().__init__()
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class _Loop:
    def __init__(self) -> None:
        self.later: list[tuple[float, Any]] = []

    def call_later(self, delay: float, callback: Any) -> Any:
        self.later.append((delay, callback))
        return SimpleNamespace(cancel=lambda: None)


def test_an_untrusted_connection_of_an_address_in_debt_is_not_read(monkeypatch: Any) -> None:
    """``_held``: between requests, a connection of an address in debt to the buckets
    (``api/pacing.py``) stops reading; what came waits unparsed and is parsed when the
    debt is paid. A trusted connection (one that carried a vouched request), a
    connection mid-request, and any connection when no buckets are set are read."""
    from moorage.api.pacing import Buckets

    parsed: list[bytes] = []
    monkeypatch.setattr(
        H11Protocol,
        "data_received",
        lambda self, data: parsed.append(data),
    )
    buckets = Buckets(10, burst=1)
    for _ in range(21):
        buckets.spend("10.9.9.9")  # 20 in debt: about 2 s
    monkeypatch.setattr(GuardedH11, "buckets", buckets)

    def connection(state: Any = h11.IDLE, trusted: bool = False) -> GuardedH11:
        c = GuardedH11.__new__(GuardedH11)
        c.conn = SimpleNamespace(their_state=state, trailing_data=(b"", False))  # type: ignore[assignment]
        c.transport = _Readable()  # type: ignore[assignment]
        c.loop = _Loop()  # type: ignore[assignment]
        c.timeout_keep_alive_task = None
        c._address = "10.9.9.9"
        c.trusted = trusted
        return c

    held = connection()
    held.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    held.data_received(b"GET /2 HTTP/1.1\r\n")  # came before the pause took: kept too
    assert parsed == [] and not held.transport.reading  # type: ignore[attr-defined]
    ((delay, release),) = held.loop.later  # type: ignore[attr-defined]
    assert 1.5 < delay <= 2.2
    buckets.clock = lambda: time.monotonic() + delay  # the debt is paid
    release()
    assert parsed == [b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\n"]
    assert held.transport.reading  # type: ignore[attr-defined]

    parsed.clear()
    for c in (connection(trusted=True), connection(state=h11.SEND_BODY)):
        c.data_received(b"x")
    assert parsed == [b"x", b"x"]
    monkeypatch.setattr(GuardedH11, "buckets", None)
    connection().data_received(b"y")
    assert parsed == [b"x", b"x", b"y"]


def test_a_held_connection_sending_more_than_it_may_keep_is_dropped(monkeypatch: Any) -> None:
    """``MAX_AHEAD`` bounds what comes while a connection is held, not the read that began
    the hold: a POST head read with 70,000 bytes of its body was dropped at once,
    unanswered, neither held nor refused (helper 54)."""
    from moorage.api.connections import MAX_AHEAD

    c = _in_debt_connection(monkeypatch, "10.9.9.8", [])
    c.data_received(b"POST /x HTTP/1.1\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70_000)
    assert c._release_timer is not None and not c.transport.aborted  # type: ignore[attr-defined]
    c.data_received(b"x" * MAX_AHEAD)
    assert not c.transport.aborted  # type: ignore[attr-defined]
    c.data_received(b"x")
    assert c.transport.aborted  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("head", "vouchable"),
    [
        (b"GET /api/workloads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n", True),
        (b"GET /api/workloads HTTP/1.1\r\nhost: x\r\nAUTHORIZATION: Bearer t\r\n\r\n", True),
        (b"GET /apps HTTP/1.1\r\nHost: x\r\nCookie: a=b; moorage_session=s\r\n\r\n", True),
        (b"POST /hooks/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", True),
        (b"GET /api/nothing HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"GET /hooks/abc HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"POST /api/session HTTP/1.1\r\nHost: x\r\nCookie: other=1\r\n\r\n", False),
        (b"GET /?authorization:x HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ],
)
def test_only_a_request_that_names_no_credential_is_held(
    monkeypatch: Any, head: bytes, vouchable: bool
) -> None:
    """A request naming a credential (or a POST to a webhook) is parsed whatever its
    address owes (``Pace`` vouches for it or refuses it): a logged-in browser behind a
    flooding address's NAT opens new connections without waiting the debt out."""
    from moorage.api.cache import SESSION_COOKIE
    from moorage.api.connections import _CREDENTIALS

    assert f"{SESSION_COOKIE}=".encode() in _CREDENTIALS
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.7", parsed)
    c.data_received(head)
    assert (parsed == [head]) is vouchable
    assert c.transport.reading is vouchable  # type: ignore[attr-defined]


def test_the_longest_waiting_connection_is_closed_not_one_just_opened(monkeypatch: Any) -> None:
    """Past ``SAMPLE`` holders the first waiting connection of the sample was closed,
    often one a client had just opened, whose head was in its socket but not yet read:
    an idle flood from 500 addresses cut 4 in 593 token listings (attacker pass H).
    The one heard from longest ago among those sampled is closed."""
    for _ in range(20):
        by_address: dict[str, set[Any]] = {}
        connections: set[Any] = set()
        monkeypatch.setattr(GuardedH11, "_by_address", by_address)
        count = SAMPLE // 2  # all of them in the sample
        monkeypatch.setattr(GuardedH11, "max_connections", count)
        held = [_held(f"10.0.0.{i}", by_address, connections) for i in range(count)]
        for i in range(SAMPLE):  # more holders than ``SAMPLE`` (their connections elsewhere)
            by_address[f"10.1.0.{i}"] = {object()}
        for c in held:  # all but two being answered
            c.conn = SimpleNamespace(their_state=h11.DONE)  # type: ignore[assignment]
        young, old = held[0], held[1]
        for c in (young, old):
            c.conn = SimpleNamespace(their_state=h11.IDLE)  # type: ignore[assignment]
        young._heard = time.monotonic()
        old._heard = time.monotonic() - 10
        assert _newcomer(connections)._admit("192.0.2.7")
        assert old.transport.closed and not young.transport.closed  # type: ignore[attr-defined]


def _in_debt_connection(monkeypatch: Any, address: str, parsed: list[bytes]) -> GuardedH11:
    """A connection of ``address``, in debt, whose h11 keeps what it was given."""
    from moorage.api.pacing import Buckets

    buckets = Buckets(1, burst=1)
    for _ in range(5):
        buckets.spend(address)
    monkeypatch.setattr(GuardedH11, "buckets", buckets)
    kept = bytearray()

    def fed(self: Any, data: bytes) -> None:
        parsed.append(data)
        kept.extend(data)

    monkeypatch.setattr(H11Protocol, "data_received", fed)
    c = GuardedH11.__new__(GuardedH11)

    class _Conn:
        their_state = h11.IDLE

        @property
        def trailing_data(self) -> tuple[bytes, bool]:
            return bytes(kept), False

    c.conn = _Conn()  # type: ignore[assignment]
    c.transport = _Readable()  # type: ignore[assignment]
    c.loop = _Loop()  # type: ignore[assignment]
    c._address = address
    return c


def test_a_head_whose_credential_comes_in_a_second_read_is_not_held(monkeypatch: Any) -> None:
    """A head judged by its first read alone: its ``Authorization`` line came in the
    next one and a logged-in client behind an address in debt was held for the debt
    (attacker pass H: 5.5 s, up to the 15 s head deadline and then closed)."""
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.6", parsed)
    first = b"GET /api/workloads HTTP/1.1\r\nHost: x\r\n"
    second = b"Authorization: Bearer t\r\n\r\n"
    c.data_received(first)
    assert parsed == [] and c.transport.reading  # type: ignore[attr-defined]
    c.data_received(second)
    assert parsed == [first + second] and c.transport.reading  # type: ignore[attr-defined]


def test_a_head_split_or_ended_by_bare_newlines_is_still_held(monkeypatch: Any) -> None:
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.5", parsed)
    c.data_received(b"GET / HTTP/1.1\nHost: x\n")
    c.data_received(b"\n")  # the head is whole now (h11 takes a bare LF): held
    assert parsed == [] and not c.transport.reading  # type: ignore[attr-defined]
    d = _in_debt_connection(monkeypatch, "10.9.9.5", parsed)
    for piece in (b"GET / HTTP/1.1\r\nHost: x\r\n\r", b"\n"):  # the end across two reads
        d.data_received(piece)
    assert parsed == [] and not d.transport.reading  # type: ignore[attr-defined]
    assert d._stash == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_head_start_kept_past_the_bound_goes_to_h11(monkeypatch: Any) -> None:
    """What is kept of a head not yet whole is bounded: past ``MAX_HEAD_BYTES`` h11 gets it
    (and refuses it: no head is that long)."""
    from moorage.api.connections import MAX_HEAD_BYTES

    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.3", parsed)
    for _ in range(MAX_HEAD_BYTES // 1024):
        c.data_received(b"x" * 1024)
    assert parsed == []
    c.data_received(b"y")
    assert parsed == [b"x" * MAX_HEAD_BYTES + b"y"] and c._partial is None


@pytest.mark.parametrize("start", [b"POST /hooks/x HTTP/1.1\r\nX-Padding: ", b""])
def test_one_read_past_the_bound_goes_to_h11_whole(monkeypatch: Any, start: bytes) -> None:
    """A head's start over ``MAX_HEAD_BYTES`` in the connection's first read went to h11 as
    ``b""`` (what was kept before it: nothing), which h11 takes for the client's end: its
    ``ConnectionClosed`` came back for ever in uvicorn's event loop, the server's loop spun
    and every request of every client timed out (full run 47)."""
    from moorage.api.connections import MAX_HEAD_BYTES

    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.5", parsed)
    data = start + b"a" * (MAX_HEAD_BYTES + 1)
    c.data_received(data)
    assert parsed == [data] and c._partial is None


def test_a_held_head_is_not_closed_by_the_keep_alive_or_head_deadline(monkeypatch: Any) -> None:
    """The debt may be up to a minute; uvicorn's keep-alive timer (5 s) and the head
    deadline (15 s) closed a held connection unanswered, its request lost."""
    cancelled: list[str] = []
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.4", parsed)
    c.timeout_keep_alive_task = SimpleNamespace(cancel=lambda: cancelled.append("keep-alive"))  # type: ignore[assignment]
    c._head_timer = SimpleNamespace(cancel=lambda: cancelled.append("head"))  # type: ignore[assignment]
    c.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parsed == [] and sorted(cancelled) == ["head", "keep-alive"]
    assert c.timeout_keep_alive_task is None and c._head_timer is None


def test_behind_a_trusted_proxy_the_forwarded_address_is_judged(monkeypatch: Any) -> None:
    """uvicorn counts a request from a proxy it trusts against the address its
    ``X-Forwarded-For`` names (``Pace``): so does ``_held``. Judged by the proxy's own
    address, every visitor was held while it was in debt (a local script without the
    header), and a forwarded flood never was."""
    from moorage.api.connections import _forwarder

    config = SimpleNamespace(proxy_headers=True, forwarded_allow_ips="127.0.0.1,::1")
    assert _forwarder(config, "10.0.0.1") is None
    assert (
        _forwarder(SimpleNamespace(proxy_headers=False, forwarded_allow_ips="*"), "127.0.0.1")
        is None
    )
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "127.0.0.1", parsed)  # the proxy is in debt
    c._forwarder = _forwarder(config, "127.0.0.1")
    visitor = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"
    c.data_received(visitor)
    assert parsed == [visitor] and c.transport.reading  # type: ignore[attr-defined]

    parsed.clear()
    flood = _in_debt_connection(monkeypatch, "127.0.0.1", parsed)
    flood._forwarder = _forwarder(config, "127.0.0.1")
    assert GuardedH11.buckets is not None
    for _ in range(5):
        GuardedH11.buckets.spend("198.51.100.7")  # the flooder, forwarded, in debt
    flood.data_received(b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 198.51.100.7\r\n\r\n")
    assert parsed == [] and not flood.transport.reading  # type: ignore[attr-defined]

    # what is not a whole head from the proxy's address (a TLS hello to the plain port,
    # a local client writing its head in parts) goes to h11 at once, not kept: h11 answers
    # 400 to a broken one now, not at the head deadline
    parsed.clear()
    local = _in_debt_connection(monkeypatch, "127.0.0.1", parsed)
    local._forwarder = _forwarder(config, "127.0.0.1")
    local.data_received(b"\x16\x03\x01\x02\x00")
    assert parsed == [b"\x16\x03\x01\x02\x00"]


def test_a_head_a_proxy_wrote_in_two_parts_is_judged_by_its_forwarded_address(
    monkeypatch: Any,
) -> None:
    """Go's ``http.Transport`` (Caddy's) writes a request 4 KiB at a time: a head past
    that came in two reads, the first (``X-Forwarded-For`` in it) went to h11 unjudged
    and the second was judged alone, against the proxy's own address, never in debt. A
    flood padding its heads past 4 KiB through Caddy was never held (attacker pass I)."""
    from moorage.api.connections import _forwarder

    config = SimpleNamespace(proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "127.0.0.1", parsed)
    c._forwarder = _forwarder(config, "127.0.0.1")
    assert GuardedH11.buckets is not None
    GuardedH11.buckets._balance.clear()  # the proxy owes nothing
    for _ in range(5):
        GuardedH11.buckets.spend("198.51.100.7")  # the flooder, forwarded, in debt
    first = b"GET /x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\nZ-Pad: " + b"p" * 4000
    c.data_received(first)
    c.data_received(b"ppp\r\n\r\n")
    assert parsed == [] and not c.transport.reading  # type: ignore[attr-defined]
    assert c._stash == first + b"ppp\r\n\r\n"


def test_a_head_split_where_its_address_fell_into_debt_is_judged_whole(monkeypatch: Any) -> None:
    """The first part of a head came while its address owed nothing and went to h11; the
    address was in debt by the second, judged alone: its ``Authorization`` line, in the
    first part, was not seen and a logged-in client waited the debt out (attacker pass
    I). The start of a head is kept until it is whole, whatever the address owes."""
    parsed: list[bytes] = []
    c = _in_debt_connection(monkeypatch, "10.9.9.2", parsed)
    assert GuardedH11.buckets is not None
    debts = GuardedH11.buckets._balance.copy()
    GuardedH11.buckets._balance.clear()  # nothing owed yet
    first = b"GET /api/workloads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
    c.data_received(first)
    GuardedH11.buckets._balance.update(debts)  # a flood behind the same NAT spent meanwhile
    c.data_received(b"Accept: */*\r\n\r\n")
    assert parsed == [first + b"Accept: */*\r\n\r\n"] and c.transport.reading  # type: ignore[attr-defined]


def test_a_trusted_proxy_is_not_bound_as_one_address(monkeypatch: Any) -> None:
    """Every client behind a reverse proxy on the host comes from its address: bound to
    ``PER_ADDRESS`` connections like any one client, a client in debt sending 128 requests
    at once through it had each held with its connection (``_held``) and every other
    client of the proxy, logged in or not, was refused 503 ``busy`` (attacker pass I).
    A proxy's connections are bounded by ``max_connections`` and eviction alone."""
    by_address: dict[str, set[Any]] = {}
    connections: set[Any] = set()
    monkeypatch.setattr(GuardedH11, "_by_address", by_address)
    monkeypatch.setattr(GuardedH11, "max_connections", 300)
    held = [_held("127.0.0.1", by_address, connections) for _ in range(GuardedH11.per_address)]
    assert not _newcomer(connections)._admit("127.0.0.1")  # a client of its own: bounded
    assert _newcomer(connections)._admit("127.0.0.1", proxy=True)
    monkeypatch.setattr(GuardedH11, "max_connections", len(connections) - 1)
    for c in held:  # held, or between requests: only waiting
        c._heard = time.monotonic()
    assert _newcomer(connections)._admit("127.0.0.1", proxy=True)  # one waiting made room
    assert sum(c.transport.closed for c in held) == 1  # type: ignore[attr-defined]


_LARGEST = b"GET /" + b"p" * 2000 + b" HTTP/1.1\r\nHost: x\r\nA: " + b"a" * 16_000 + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "refused"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * 16_000 + b"\r\n", True),  # 64 KB, lines
        (b"GET / HTTP/1.1\r\nHost: x\r\nA: " + b"a" * 40_000 + b"\r\n\r\n", True),  # bytes
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 99 + b"\r\n", False),
        (_LARGEST, False),
    ],
)
def test_a_head_over_its_bounds_is_refused_before_h11_parses_it(
    monkeypatch: Any, head: bytes, refused: bool
) -> None:
    """h11 bounds a head only while it is incomplete; one that came whole in one read
    was parsed, a line at a time in Python, whatever its size, and refused only after
    (``limits.RequestHead``): 64 KB of empty fields held the event loop 46 ms, a 256 KiB
    read about 0.2 s (attacker pass I). Such a head is refused unparsed, read in one
    piece or in many; a head within ``RequestHead``'s bounds is parsed."""
    monkeypatch.setattr(GuardedH11, "buckets", None)
    for pieces in ([head], [head[i : i + 1000] for i in range(0, len(head), 1000)]):
        c = GuardedH11.__new__(GuardedH11)
        c.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
        c._refusal = None
        c._watch_events()
        events: list[Any] = []
        try:
            for piece in pieces:
                c.conn.receive_data(piece)
                events.append(c.conn.next_event())
        except h11.RemoteProtocolError:
            events.append("refused")
        assert ("refused" in events) is refused, events[-1]
        if refused:
            assert c._refused_as[0] == 431
            with pytest.raises(h11.RemoteProtocolError):  # asked again: still never parsed
                c.conn.next_event()
        assert any(isinstance(e, h11.Request) for e in events) is not refused


def _answering(
    body: Callable[[Any], bytes] = lambda _scope: b"ok", *, reads: bool = True, pause: float = 0.1
) -> Any:
    """An ASGI app that answers 200 with ``body(scope)`` after ``pause`` s, having read the
    request first when ``reads`` (as ``BodyLimit`` does: uvicorn reads the socket again,
    so a client's end is read before the answer is made)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if reads:
            await receive()
        if pause:
            await asyncio.sleep(pause)
        answer = body(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


def _unbound(monkeypatch: Any) -> None:
    """No share of connections per address and no pacing for the ``GuardedH11`` servers
    of a test."""
    monkeypatch.setattr(GuardedH11, "_by_address", {})
    monkeypatch.setattr(GuardedH11, "buckets", None)


def _sent_then_ended(monkeypatch: Any, app: Any, sent: bytes) -> tuple[bytes, bool]:
    """Everything a ``GuardedH11`` server of ``app`` answers on one connection whose client
    sends ``sent`` and then ends its side (``shutdown(SHUT_WR)``, as ``nc -N`` does), and
    whether the server had let go of every connection within 2 s of its last answer."""
    _unbound(monkeypatch)

    async def exchange() -> tuple[bytes, bool]:
        server, state, port = await _guarded_server(app)
        loop = asyncio.get_running_loop()
        client = socket.socket()
        client.setblocking(False)
        try:
            await loop.sock_connect(client, ("127.0.0.1", port))
            await loop.sock_sendall(client, sent)
            client.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := await asyncio.wait_for(loop.sock_recv(client, 4096), 3):
                answer += chunk
            deadline = time.monotonic() + 2
            while state.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return answer, not state.connections
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    return run(exchange())


def test_a_request_whose_client_ended_its_side_is_answered(monkeypatch: Any) -> None:
    """A client that sends its request and ends its side (``shutdown(SHUT_WR)``) got
    its connection closed and no answer unless the answer was made before the end was
    read: uvicorn's ``eof_received`` closes the transport. A held request was lost every
    time (reading resumes at its release, and the end came before its answer)."""
    answer, _closed = _sent_then_ended(
        monkeypatch, _answering(reads=False), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")


@pytest.mark.parametrize("last", [b"HTTP/1.1\r\nHost: x", b"HTTP/1.0"], ids=["1.1", "1.0"])
def test_every_request_sent_before_the_client_ended_its_side_is_answered(
    monkeypatch: Any, last: bytes
) -> None:
    """Two requests pipelined, then the client's end (``printf 'GET..GET..' | nc -N``):
    the first was answered and the connection closed with the second, whole in h11's
    buffer, never answered (``eof_received`` kept the connection for one answer only).
    Each whole request is answered, then the connection closes."""
    requests = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two %s\r\n\r\n" % last
    answer, closed = _sent_then_ended(  # and half a third request
        monkeypatch, _answering(lambda scope: scope["path"].encode()), requests + b"GET /thr"
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer
    assert answer.endswith(b"/two")
    assert closed


@pytest.mark.parametrize(
    "request_",
    [
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    ],
    ids=["http-1.0", "connection-close", "upgrade"],
)
def test_a_last_request_whose_client_ended_its_side_is_answered(
    monkeypatch: Any, request_: bytes
) -> None:
    """``printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -N`` (a health check's way) got no
    answer: after a request that ends the connection h11's state for the client is
    ``MUST_CLOSE``, not ``DONE``, and ``eof_received`` closed the connection before the
    answer was made (the route had read the request, so the end was read too). A request
    asking to upgrade (h2c, a WebSocket: none is served) left it ``MIGHT_SWITCH_PROTOCOL``
    until its answer, and was lost the same way."""
    answer, _closed = _sent_then_ended(monkeypatch, _answering(), request_)
    assert b" 200 " in answer and answer.endswith(b"ok"), answer


def test_upgrade_requests_sent_far_ahead_of_their_answers_end_the_connection(
    monkeypatch: Any,
) -> None:
    """``MAX_AHEAD`` was judged only while h11's state for the client was ``DONE``: after
    a request asking to upgrade it is ``MIGHT_SWITCH_PROTOCOL`` until the answer, so a
    client pipelining such requests (``Connection: Upgrade``, ``Upgrade: foo``) without
    pause was read again at each answer and kept whole: 156 MiB sent in 4 s grew a
    server from 112 to 265 MiB, as attacker pass E's plain requests once did."""
    from moorage.api.connections import MAX_AHEAD

    one = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"

    async def check() -> None:
        _unbound(monkeypatch)
        server, state, port = await _guarded_server(_answering(pause=0))
        loop = asyncio.get_running_loop()
        client = socket.socket()
        client.setblocking(False)

        async def write() -> None:
            sent = 0
            with contextlib.suppress(OSError):
                while sent < 64 * MAX_AHEAD:  # the server closes long before
                    await loop.sock_sendall(client, one * 1000)
                    sent += len(one) * 1000

        async def read() -> bytes:
            answers = b""
            with contextlib.suppress(OSError):
                while chunk := await loop.sock_recv(client, 65536):
                    answers += chunk
            return answers

        try:
            await loop.sock_connect(client, ("127.0.0.1", port))
            reader = asyncio.ensure_future(read())
            await asyncio.wait_for(write(), 10)
            done, _ = await asyncio.wait([reader], timeout=2)
            reader.cancel()
            answers = reader.result() if done else b""
            assert b"ahead of their answers" in answers, answers[-300:]
        finally:
            client.close()
            for c in list(state.connections):
                c.transport.abort()
            server.close()
            await server.wait_closed()

    run(check())
