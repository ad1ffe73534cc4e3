"""``api/urgency.py``: a call to a webhook that exists runs ahead of background work
(``Priority.urgent``) from its head to its answer, at most ``RATE`` a second of all
calls together; nothing else does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moorage.api.urgency import BURST, RATE, HookFirst
from tests.loops import run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": []}


def _middleware(clock: Clock) -> tuple[HookFirst, list[bool]]:
    """A ``HookFirst`` whose app notes whether it ran inside an urgent block."""
    inside: list[bool] = []
    open_blocks = [0]

    @contextmanager
    def urgent() -> Iterator[None]:
        open_blocks[0] += 1
        try:
            yield
        finally:
            open_blocks[0] -= 1

    async def app(scope: Any, receive: Any, send: Any) -> None:
        inside.append(open_blocks[0] == 1)
        await send({"type": "http.response.start", "status": 202, "headers": []})

    async def vouch(scope: Any) -> bool:
        return bool(scope["path"] == "/hooks/real")

    return HookFirst(app, urgent=urgent, vouch=vouch, clock=clock), inside


def _call(middleware: HookFirst, scope: dict[str, Any]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    run(middleware(scope, receive, send))


def test_only_a_call_to_a_webhook_that_exists_is_urgent() -> None:
    middleware, inside = _middleware(Clock())
    for scope in (
        _scope("POST", "/hooks/made-up"),  # no such webhook
        _scope("GET", "/hooks/real"),  # not a call
        _scope("POST", "/api/workloads"),
        {"type": "websocket", "path": "/hooks/real"},
    ):
        _call(middleware, scope)
    _call(middleware, _scope("POST", "/hooks/real"))
    assert inside == [False, False, False, False, True]


def test_urgent_calls_are_bounded_and_a_flood_does_not_run_the_bound_into_debt() -> None:
    """Forged calls to a URL that exists are urgent too (the signature is checked on the
    worker thread): past ``BURST`` and then ``RATE`` a second, a call is ordinary work,
    and a flood's refusals spend nothing, so urgency comes back as soon as the rate
    pays for it."""
    clock = Clock()
    middleware, inside = _middleware(clock)
    for _ in range(BURST + 1000):
        _call(middleware, _scope("POST", "/hooks/real"))
    assert inside == [True] * BURST + [False] * 1000
    clock.now += 1 / RATE
    _call(middleware, _scope("POST", "/hooks/real"))
    assert inside[-1] is True
