"""``api.connections.GuardedH11._admit``: each address gets an equal share of the
connections, and when all are taken a new address is let in by closing a connection of
the address holding the most that has not sent a head yet (attacker pass C: five
addresses holding every connection turned every new client away)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import h11

from moorage.api.connections import QUIET_SECONDS, SAMPLE, GuardedH11


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


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
        busy._heard = time.monotonic()  # its body is arriving now
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
    held[0]._heard = time.monotonic()  # its body is arriving
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
