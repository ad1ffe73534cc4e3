"""Running a coroutine from a test, whatever loop the test's thread already runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Run ``coro`` on a loop of its own thread: the suite's browser tests may leave an
    event loop running on the main thread, and ``asyncio.run`` refuses to nest (a full
    run failed three tests that called it directly)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _awaited(coro)).result()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
