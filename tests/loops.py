"""Running a coroutine from a test, whatever loop the test's thread already runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a loop of its own thread: the suite's browser tests may leave an
    event loop running on the main thread, and ``asyncio.run`` refuses to nest (a full
    run failed three tests that called it directly)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
