"""``api/urgency.py``: a call to a webhook that exists runs ahead of background work
(``Priority.urgent``) from its whole body until its answer starts, at most ``RATE`` a second of all
calls together; nothing else does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
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


def _counted() -> tuple[Callable[[], AbstractContextManager[None]], list[int]]:
    """A stand-in for ``Priority.urgent`` and its count of open blocks (one item)."""
    open_blocks = [0]

    @contextmanager
    def urgent() -> Iterator[None]:
        open_blocks[0] += 1
        try:
            yield
        finally:
            open_blocks[0] -= 1

    return urgent, open_blocks


def _middleware(clock: Clock) -> tuple[HookFirst, list[bool]]:
    """A ``HookFirst`` whose app notes whether it ran inside an urgent block."""
    inside: list[bool] = []
    urgent, open_blocks = _counted()

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


def test_a_call_is_urgent_only_once_its_body_is_in() -> None:
    """The client's upload is not the server's work: a POST to a URL that exists whose
    body never came (a head with ``content-length: 1000`` and one byte) held the urgent
    block open for ``BodyLimit``'s 30 s, the deploy workers paused half that time (4
    such calls: a 4-way fail-fast deploy took 0.44-0.48 s, not 0.22-0.31 s), with one
    call every 30 s, far under ``RATE``. Its bound on urgent calls a second is spent when
    the block opens."""
    clock = Clock()
    urgent, open_blocks = _counted()
    seen: list[tuple[str, int]] = []

    parts = [b"{", b"}"]

    async def receive() -> dict[str, Any]:
        seen.append(("receive", open_blocks[0]))
        body = parts.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(("start", open_blocks[0]))
        while (await receive())["more_body"]:
            pass
        seen.append(("whole", open_blocks[0]))
        await send({"type": "http.response.start", "status": 202, "headers": []})

    async def vouch(scope: Any) -> bool:
        return True

    async def send(message: Any) -> None:
        seen.append(("answer", open_blocks[0]))

    middleware = HookFirst(app, urgent=urgent, vouch=vouch, clock=clock)
    scope = {**_scope("POST", "/hooks/real"), "headers": [(b"content-length", b"2")]}
    run(middleware(scope, receive, send))
    # the answer is written at the client's pace, outside the block (a client that does
    # not read could otherwise hold it for ``SEND_SECONDS``)
    assert seen == [("start", 0), ("receive", 0), ("receive", 0), ("whole", 1), ("answer", 0)]
    assert open_blocks == [0]
    for _ in range(BURST - 1):  # the call above spent one of the burst, no more
        parts[:] = [b"{}"]
        seen.clear()
        run(middleware(scope, receive, send))
        assert ("whole", 1) in seen
    parts[:] = [b"{}"]
    seen.clear()
    run(middleware(scope, receive, send))
    assert ("whole", 0) in seen
