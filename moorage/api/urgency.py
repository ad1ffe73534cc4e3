"""Webhook calls ahead of background work, from their whole body to their answer (SPEC
section 8: a 200-way fan-out answered in <= 100 ms, under a concurrent read load).

A delivery's foreground block (``services/hooks``, ``store/priority.py``) covers the work
that queues its deployments, on its worker thread. The rest of its answer is the event
loop's: its head and the middleware, the hop to the worker thread and the thread's
start before the block, the hop back and the answer. Under a closed loop of reads and a
200-way fan-out every 2 s, that rest was about half the answer, each part stretched by
the deploy workers' share of the interpreter (``python -m bench list_under_load``: with
``HookFirst``, hook medians went from 86-108 to 68-85 ms with 8 readers, and from 63-75
to 54-55 ms with reads paced at 100 a second).

``HookFirst`` runs a POST to a webhook that exists inside ``Priority.urgent`` from when its
body is in until its answer starts (the client's upload and reading are not the server's
work): the deploy workers and reconcile wait at their next checkpoint meanwhile. It
marks such a call's scope (``is_urgent``), and the route runs the call's work with
``served_first``: the loop hands it to a thread and waits for it, at most 0.1 s
(``Priority.run_first``), so the thread has the interpreter to itself and the answer
goes out without another turn of the busy loop. The loop serves every other request
before and after that wait. In one A/B run of ``python -m bench list_under_load`` the hook
medians with 8 readers went from 84.5 to 50.2 ms (deploys that end at once) and from
129.6 to 55.5 ms (container deploys); with reads paced at 100 a second they did not
change beyond the noise.

Whether the call is signed is known only on its worker thread, so forged calls to a URL
that exists are urgent too; all calls together are urgent at most ``RATE`` a second on
average (past it, a call is ordinary work), and ``pacing.Pace`` refuses an address whose
calls queue nothing past its burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from typing import Any, TypeVar

from moorage.api.limits import ASGIApp, Message, Receive, Scope, Send, announces_body
from moorage.api.pacing import HOOKS, Buckets, Vouch
from moorage.store.priority import Priority

T = TypeVar("T")

RATE = 2.0
"""Urgent webhook calls a second, of every trigger together, on average (the same as
``services/hooks.FOREGROUND_PER_MINUTE``'s deliveries): a stream of them at most halves
background work (``Priority.checkpoint``'s run-as-long-as-it-waited rule) and never
stops it."""
BURST = 4
"""Urgent calls at once past ``RATE``: a Git host delivering a push to a few hooks."""
_ALL = ""  # one bucket for every call
URGENT = "moorage.urgent"
"""The scope key ``HookFirst`` sets (to True) on a call it runs inside an urgent block."""


def urgent_pool() -> ThreadPoolExecutor:
    """The threads of urgent calls' work (``served_first``): ``BURST``, so a burst of
    them never waits behind a read's thread. Threads start on first use."""
    return ThreadPoolExecutor(BURST, thread_name_prefix="hook-first")


def is_urgent(scope: Scope) -> bool:
    """Whether ``HookFirst`` runs this request inside an urgent block (a webhook call
    that exists, within ``RATE``)."""
    return scope.get(URGENT) is True


async def served_first(work: Callable[[], T], priority: Priority, pool: Executor) -> T:
    """``work()`` on a thread of ``pool`` while the event loop waits for it
    (``Priority.run_first``: at most ``LOOP_PAUSE`` s, less when another request holds a
    transaction), then awaited if it is not done by then. Only for a request
    ``is_urgent`` marks: the bound on how often the loop waits is ``HookFirst``'s.
    Raises what ``work`` raises."""
    future = priority.run_first(work, pool)
    if future.done():  # no hop back through the loop's queue
        return future.result()
    return await asyncio.wrap_future(future)


class HookFirst:
    """ASGI middleware: a POST to a ``/hooks/`` URL that ``vouch`` knows (a webhook that
    exists) runs inside ``urgent()`` (``Priority.urgent``) from when its body is in, if
    the shared bucket (``RATE``, ``BURST``) has a token then, and its scope is marked
    (``is_urgent``); anything else passes as it is. Raises nothing of its own. ``clock``
    is in seconds."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        urgent: Callable[[], AbstractContextManager[Any]],
        vouch: Vouch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.urgent = urgent
        self.vouch = vouch
        self.bucket = Buckets(RATE, burst=BURST, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith(HOOKS)
            and await self.vouch(scope)
        ):
            await self._urgent_once_read(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _urgent_once_read(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, inside ``urgent()`` from when the request's body is whole (its last
        ``http.request`` message received; at once when it has none) until its answer
        starts, if the shared bucket has a token then. The client's upload and its reading
        of the answer are not the server's work: a body that never came held the block
        open for ``BodyLimit``'s 30 s, one such call every 30 s, far under ``RATE``,
        halving background work for as long as it went on (attacker pass J); a client
        that does not read could hold it for ``SEND_SECONDS``."""
        with ExitStack() as block:
            opened = False

            def open_block() -> None:
                nonlocal opened
                opened = True
                if not self.bucket.debt(_ALL) and not self.bucket.spend(_ALL):
                    block.enter_context(self.urgent())  # a flood does not run it into debt
                    scope[URGENT] = True

            async def whole() -> Message:
                message = await receive()
                last = message["type"] == "http.request" and not message.get("more_body")
                if last and not opened:
                    open_block()
                return message

            async def answer(message: Message) -> None:
                nonlocal opened
                if message["type"] == "http.response.start":
                    opened = True  # never again for this request
                    block.close()  # the answer is made: writing it goes at the client's pace
                await send(message)

            if not announces_body(dict(scope.get("headers") or [])):
                open_block()
            await self.app(scope, whole, answer)
