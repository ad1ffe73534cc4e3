"""``api/pacing.py``: a token bucket per address for requests no credential vouches for,
and the 429 past it, for every kind of unvouched request (a 404, a login, a made-up
webhook, a forged token or cookie) and never for a vouched one."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from moorage.api.pacing import MAX_ADDRESSES, MAX_DEBT_SECONDS, Buckets, Pace
from tests.loops import run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    clock = Clock()
    buckets = Buckets(10, burst=5, clock=clock)
    assert [buckets.spend("a") for _ in range(5)] == [0.0] * 5
    assert buckets.spend("a") == pytest.approx(0.2)  # one token in debt: 0.2 s to pay
    assert buckets.debt("a") == pytest.approx(0.2)
    clock.now += 0.2
    assert buckets.debt("a") == 0.0
    assert buckets.spend("a") == 0.0
    assert buckets.spend("b") == 0.0  # another address has a bucket of its own


def test_refusals_spend_too_so_a_flood_pays_at_the_rate() -> None:
    clock = Clock()
    buckets = Buckets(10, burst=1, clock=clock)
    waits = [buckets.spend("a") for _ in range(31)]
    assert waits[0] == 0.0
    assert waits[-1] == pytest.approx(3.1)  # 30 in debt and the next one: 3.1 s
    clock.now += 3.0
    assert buckets.debt("a") == pytest.approx(0.1)
    assert buckets.spend("a") > 0  # not yet


def test_a_debt_is_bounded_and_debt_spends_nothing() -> None:
    clock = Clock()
    buckets = Buckets(2, burst=1, clock=clock)
    for _ in range(10_000):
        wait = buckets.spend("a")
    assert wait <= MAX_DEBT_SECONDS + 1
    before = buckets.debt("a")
    assert [buckets.debt("a") for _ in range(5)] == [before] * 5
    assert buckets.debt("unknown") == 0.0
    clock.now += MAX_DEBT_SECONDS + 1
    assert buckets.spend("a") == 0.0


def test_buckets_are_bounded_and_keep_the_ones_in_debt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moorage.api.pacing.MAX_ADDRESSES", 4)
    clock = Clock()
    buckets = Buckets(1, burst=2, clock=clock)
    for _ in range(10):
        buckets.spend("debtor")
    for name in ("x", "y", "z"):
        buckets.spend(name)
    clock.now += 5  # x, y, z full again; the debtor not yet
    buckets.spend("new")
    assert buckets.debt("debtor") > 0
    assert set(buckets._balance) == {"debtor", "new"}
    assert MAX_ADDRESSES > 1000  # the real bound


def test_a_rate_of_zero_is_not_a_bucket() -> None:
    with pytest.raises(ValueError, match="over 0"):
        Buckets(0)


class Connection:
    trusted = False


def _call(pace: Pace, scope: dict[str, Any]) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    run(pace(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), dict(start["headers"]), body


def _answers(status: int) -> Any:
    """An ASGI app that answers every request ``status`` with no body."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


_ok = _answers(200)


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], client: str) -> Any:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "client": (client, 1),
    }


UNVOUCHED = {
    "unknown path": ("GET", "/api/nothing", []),
    "login": ("POST", "/api/session", [(b"content-type", b"application/json")]),
    "made-up webhook": ("POST", "/hooks/made-up", []),
    "forged token": ("GET", "/api/workloads", [(b"authorization", b"Bearer mrg_forged")]),
    "forged cookie": ("GET", "/api/workloads", [(b"cookie", b"moorage_session=forged")]),
    "ui page": ("GET", "/", []),
}


@pytest.mark.parametrize("kind", sorted(UNVOUCHED))
def test_every_unvouched_kind_is_429_past_the_budget(kind: str) -> None:
    method, path, headers = UNVOUCHED[kind]
    connection = Connection()

    async def vouch(scope: Any) -> bool:
        return False

    pace = Pace(_ok, buckets=Buckets(1, burst=3), vouch=vouch, connection=lambda: connection)
    statuses = [_call(pace, _scope(method, path, headers, "10.0.0.1"))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, answer_headers, body = _call(pace, _scope(method, path, headers, "10.0.0.1"))
    assert status == 429
    error = json.loads(body)["error"]
    assert error["code"] == "too_many_requests"
    assert int(answer_headers[b"retry-after"]) == error["details"]["retry_after"] >= 1
    assert "API token" in error["message"]
    assert not connection.trusted
    # another address is not this one's debtor
    assert _call(pace, _scope(method, path, headers, "10.0.0.2"))[0] == 200


def test_a_vouched_request_is_never_counted_and_trusts_its_connection() -> None:
    connection = Connection()

    async def vouch(scope: Any) -> bool:
        return any(k == b"authorization" for k, _ in scope["headers"])

    buckets = Buckets(1, burst=2)
    pace = Pace(_ok, buckets=buckets, vouch=vouch, connection=lambda: connection)
    for _ in range(3):
        _call(pace, _scope("GET", "/api/nothing", [], "10.0.0.1"))
    assert buckets.debt("10.0.0.1") > 0  # the address is in debt
    token = [(b"authorization", b"Bearer mrg_real")]
    assert [
        _call(pace, _scope("GET", "/api/workloads", token, "10.0.0.1"))[0] for _ in range(50)
    ] == [200] * 50
    assert connection.trusted


def test_a_webhook_url_vouches_for_its_own_request_but_trusts_no_connection() -> None:
    """A webhook URL is a credential of its own request only: it sits in a Git host's
    settings and delivery logs, and a connection it made trusted was never held again,
    so whoever learned one sent the rest of a flood on it at the speed of refusals
    (attacker pass I)."""
    connection = Connection()

    async def vouch(scope: Any) -> bool:
        return bool(scope["path"] == "/hooks/real")

    buckets = Buckets(1, burst=2)
    pace = Pace(_answers(202), buckets=buckets, vouch=vouch, connection=lambda: connection)
    assert [_call(pace, _scope("POST", "/hooks/real", [], "10.0.0.1"))[0] for _ in range(9)] == [
        202
    ] * 9
    assert not connection.trusted
    assert buckets.debt("10.0.0.1") == 0  # a delivery is never counted all the same


@pytest.mark.parametrize("status", [401, 200, 429, 413])  # forged, replayed, over, too large
def test_webhook_calls_that_queue_nothing_spend_and_an_address_in_debt_is_refused(
    status: int,
) -> None:
    """A webhook URL vouches for its call, but a call answered other than 202 (a bad
    signature, a replay, one over the trigger's rate) spends from its address, and once
    the address is in debt its calls are 429 unread: forged calls were never counted,
    and each cost a worker thread a read and an HMAC of up to 1 MiB at any rate (attacker
    pass J). Deliveries from another address go on, and never spend."""
    clock = Clock()
    buckets = Buckets(1, burst=3, clock=clock)

    async def vouch(scope: Any) -> bool:
        return bool(scope["path"].startswith("/hooks/"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        answer = _answers(202 if scope["path"] == "/hooks/good" else status)
        await answer(scope, receive, send)

    pace = Pace(app, buckets=buckets, vouch=vouch, connection=lambda: None)
    bad, good = _scope("POST", "/hooks/bad", [], "10.0.0.1"), _scope("POST", "/hooks/good", [], "")
    assert [_call(pace, bad)[0] for _ in range(3)] == [status] * 3
    for scope in (bad, {**good, "client": ("10.0.0.1", 1)}):
        got, headers, body = _call(pace, scope)
        assert got == 429
        error = json.loads(body)["error"]
        assert error["code"] == "too_many_requests" and "webhook calls" in error["message"]
        assert int(headers[b"retry-after"]) == error["details"]["retry_after"] >= 1
    other = {**good, "client": ("10.0.0.2", 1)}
    assert [_call(pace, other)[0] for _ in range(20)] == [202] * 20
    assert buckets.debt("10.0.0.2") == 0
    clock.now += 10  # the debt paid: the address delivers again
    assert _call(pace, {**good, "client": ("10.0.0.1", 1)})[0] == 202


def test_no_buckets_is_no_bound_and_no_connection_is_fine() -> None:
    async def vouch(scope: Any) -> bool:
        return False

    pace = Pace(_ok, buckets=None, vouch=vouch, connection=lambda: None)
    assert {_call(pace, _scope("GET", "/x", [], "10.0.0.1"))[0] for _ in range(50)} == {200}
    pace = Pace(_ok, buckets=Buckets(1, burst=1), vouch=vouch, connection=lambda: None)
    assert [_call(pace, _scope("GET", "/x", [], "10.0.0.1"))[0] for _ in range(2)] == [200, 429]


def test_requests_no_credential_vouches_for_never_refuse_a_delivery() -> None:
    """Only an address's webhook calls that queued nothing refuse its webhook calls: a
    flood of made-up webhook URLs (or any unvouched request) from a Git host's address
    (anyone may point a webhook of their own repository there, or, behind a trusted
    proxy, name it in ``X-Forwarded-For``) put it in debt, and its correctly signed
    deliveries were 429 (700 calls to made-up URLs, then a signed delivery: 429)."""

    async def vouch(scope: Any) -> bool:
        return bool(scope["path"] == "/hooks/good")

    buckets = Buckets(1, burst=3, clock=Clock())
    pace = Pace(_answers(202), buckets=buckets, vouch=vouch, connection=lambda: None)
    made_up = _scope("POST", "/hooks/made-up", [], "10.0.0.1")
    assert [_call(pace, made_up)[0] for _ in range(4)] == [202, 202, 202, 429]
    assert buckets.debt("10.0.0.1") > 0
    good = _scope("POST", "/hooks/good", [], "10.0.0.1")
    assert [_call(pace, good)[0] for _ in range(5)] == [202] * 5
