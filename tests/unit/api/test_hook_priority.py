"""A webhook delivery runs as foreground work: background threads of the same server
wait at their checkpoints while it is answered (``store/priority.py``; the effect on the
answer time is measured by ``python -m bench list_under_load``)."""

from __future__ import annotations

import json
import threading

import httpx
from sqlalchemy import text

from moorage.api.app import create_app
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM
from moorage.server import build
from moorage.services import triggers
from tests.fakes.engine import FakeEngine
from tests.fakes.world import World
from tests.unit.api.test_cache import run

TRIES = 20  # deliveries until one overlaps a background statement; one almost always does


def test_background_statements_wait_while_a_delivery_is_answered(world: World) -> None:
    server = build(world.settings, world.db, Registry.load(), FakeEngine())
    app = create_app(server)  # its lifespan is not run: no worker of its own competes
    with world.db.session() as s:
        hook = triggers.create(
            s, SYSTEM, server.registry, kind="webhook", name="w", config={"provider": "generic"}
        )
        token = hook.token
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
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://moorage") as c:
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
