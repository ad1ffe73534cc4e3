"""A webhook delivery runs as foreground work: background threads of the same server
wait at their checkpoints while it is answered (``store/priority.py``; the effect on the
answer time is measured by ``python -m bench list_under_load``)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from moorage.api import urgency
from moorage.api.app import create_app
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM
from moorage.server import build
from moorage.services import hooks, triggers
from tests.fakes.engine import FakeEngine
from tests.fakes.world import World
from tests.unit.api.test_cache import run

T = TypeVar("T")
TRIES = 20  # deliveries until one overlaps a background statement; one almost always does


def hooked_app(world: World, config: dict[str, Any]) -> tuple[FastAPI, str]:
    """The API over ``world`` (its lifespan not run, unless a test runs it: then its
    workers compete) and the URL token of a new webhook trigger of ``config``."""
    server = build(world.settings, world.db, Registry.load(), FakeEngine())
    with world.db.session() as s:
        hook = triggers.create(s, SYSTEM, server.registry, kind="webhook", name="w", config=config)
        token = hook.token
    assert token is not None  # a webhook trigger always has one
    return create_app(server), token


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://moorage")


def counted_blocks(world: World) -> list[None]:
    """A list that gets an item each time a foreground block of ``world``'s store opens."""
    priority = world.db.priority
    opened: list[None] = []
    original = priority.foreground

    def counted() -> Any:
        opened.append(None)
        return original()

    priority.foreground = counted  # type: ignore[method-assign]
    return opened


def test_background_statements_wait_while_a_delivery_is_answered(world: World) -> None:
    app, token = hooked_app(world, {"provider": "generic"})
    priority = world.db.priority
    stop = threading.Event()
    statements = 0

    def background() -> None:
        nonlocal statements
        with priority.background():
            while not stop.is_set():
                with world.db.session() as s:
                    s.execute(text("SELECT 1"))
                statements += 1

    thread = threading.Thread(target=background, daemon=True)
    thread.start()

    async def deliver(n: int) -> int:
        async with client(app) as c:
            r = await c.post(f"/hooks/{token}", content=json.dumps({"n": n}))
            return r.status_code

    try:
        answers = []
        for n in range(TRIES):
            answers.append(run(deliver(n)))
            if priority.pauses:
                break
    finally:
        stop.set()
        thread.join(10)
    assert set(answers) == {202}
    assert priority.pauses >= 1
    assert statements > 0  # and the background thread went on after each delivery
    assert not priority.busy


def test_refused_calls_never_hold_background_work(world: World) -> None:
    """Unknown tokens, bad signatures and replays answer without a foreground block: a
    stranger looping on ``/hooks`` cannot slow the deploy workers."""
    app, token = hooked_app(world, {"provider": "github", "secret": "s" * 32})
    opened = counted_blocks(world)

    async def refused() -> list[int]:
        async with client(app) as c:
            codes = []
            for n in range(5):
                body = json.dumps({"ref": "refs/heads/main", "n": n})
                forged = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}
                codes.append(
                    (await c.post(f"/hooks/{token}", content=body, headers=forged)).status_code
                )
                codes.append((await c.post("/hooks/no-such-token", content=body)).status_code)
            return codes

    assert set(run(refused())) == {401, 404}
    assert opened == []


def test_deliveries_share_one_foreground_budget(world: World, monkeypatch: Any) -> None:
    """Past ``FOREGROUND_PER_MINUTE`` deliveries of all triggers together, a delivery is
    answered as ordinary work: many triggers, or an unsigned one whose URL leaked, cannot
    keep the deploy workers and the event loop waiting."""
    monkeypatch.setattr(hooks, "FOREGROUND_PER_MINUTE", 3)
    app, token = hooked_app(world, {"provider": "generic"})
    with world.db.session() as s:
        other = triggers.create(
            s, SYSTEM, Registry.load(), kind="webhook", name="v", config={"provider": "generic"}
        ).token
    opened = counted_blocks(world)

    async def deliver() -> list[int]:
        async with client(app) as c:
            return [
                (await c.post(f"/hooks/{t}", content=json.dumps({"n": n}))).status_code
                for n in range(4)
                for t in (token, other)
            ]

    assert run(deliver()) == [202] * 8
    assert len(opened) == 3


def test_the_event_loop_steps_aside_while_a_delivery_is_answered(world: World) -> None:
    """The app's lifespan makes its event loop step aside while a foreground block is
    open (``Priority.on_open``): a request that arrives meanwhile is answered after the
    block ends, and the loop serves again once no block is open."""
    app, _token = hooked_app(world, {"provider": "generic"})
    priority = world.db.priority
    priority.loop_pause = 30.0  # the block, not the bound, ends the wait
    loop = asyncio.new_event_loop()
    serving = threading.Thread(target=loop.run_forever, daemon=True)
    serving.start()
    lifespan = app.router.lifespan_context(app)

    def on_loop(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    async def healthz() -> float:
        async with client(app) as c:
            assert (await c.get("/api/healthz")).status_code == 200
        return time.monotonic()

    try:
        on_loop(lifespan.__aenter__())  # the loop registers its step aside
        try:
            on_loop(healthz())
            with priority.foreground():
                answer = asyncio.run_coroutine_threadsafe(healthz(), loop)
                time.sleep(0.2)
                closed = time.monotonic()
            assert answer.result(30) >= closed
            assert priority.loop_pauses == 1
            on_loop(healthz())  # no block: no wait
            assert priority.loop_pauses == 1
        finally:
            on_loop(lifespan.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        serving.join(10)
        loop.close()
    assert not priority._openers  # undone at shutdown


def test_an_urgent_call_is_worked_while_the_loop_waits_and_past_the_bound_the_loop_serves(
    world: World, monkeypatch: Any
) -> None:
    """A call ``HookFirst`` made urgent runs on a thread of the urgent pool, and the loop
    runs nothing else until its work is done (``urgency.served_first``): no hop to a busy
    loop's queue on the way back. Past ``HookFirst``'s bound, a call is ordinary work on
    the request threads, and the loop serves meanwhile."""
    monkeypatch.setattr(urgency, "RATE", 0.001)  # the burst, then no token for the run
    app, token = hooked_app(world, {"provider": "generic"})
    world.db.priority.loop_pause = 1.0  # the burst's works, back to back, fit the bound
    original = hooks.receive
    ticks = [0]
    seen: list[tuple[str, int]] = []  # (the work's thread, loop ticks while it ran)

    def receive(*args: Any, **kwargs: Any) -> Any:
        before = ticks[0]
        time.sleep(0.05)
        answer = original(*args, **kwargs)
        seen.append((threading.current_thread().name, ticks[0] - before))
        return answer

    monkeypatch.setattr(hooks, "receive", receive)

    async def calls() -> list[int]:
        serving = True

        async def tick() -> None:
            while serving:
                ticks[0] += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        async with client(app) as c:
            codes = [
                (await c.post(f"/hooks/{token}", content=json.dumps({"n": n}))).status_code
                for n in range(urgency.BURST + 1)
            ]
        serving = False
        await ticker
        return codes

    assert run(calls()) == [202] * (urgency.BURST + 1)
    urgent, ordinary = seen[: urgency.BURST], seen[urgency.BURST]
    assert all(name.startswith("hook-first") and n == 0 for name, n in urgent), seen
    assert not ordinary[0].startswith("hook-first") and ordinary[1] > 0, seen
    assert world.db.priority.loop_pauses >= urgency.BURST


def test_an_urgent_call_after_the_lifespan_ended_is_answered(world: World) -> None:
    """The lifespan's urgent pool is shut down at its end; an app that serves after it
    (a test client, an embedder) works urgent calls on its own pool again: the shut-down
    one raised RuntimeError for every urgent call (a 500)."""
    app, token = hooked_app(world, {"provider": "generic"})

    async def after_lifespan() -> int:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        await lifespan.__aexit__(None, None, None)
        async with client(app) as c:
            return (await c.post(f"/hooks/{token}", content=b"{}")).status_code

    assert run(after_lifespan()) == 202
