"""The per-workload lock: one holder per workload, re-entrant, independent across workloads.

Every wait here is bounded by a real timer that fails the test when it fires.
"""

from __future__ import annotations

import threading

import pytest

from moorage.errors import Conflict
from moorage.services.locks import WorkloadLocks

PROBE_SECONDS = 5


def in_thread(fn: object) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_second_holder_of_one_workload_waits_and_others_do_not() -> None:
    locks = WorkloadLocks()
    release = threading.Event()
    holding = threading.Event()

    def holder() -> None:
        with locks.hold("a"):
            holding.set()
            release.wait(PROBE_SECONDS)

    t = in_thread(holder)
    assert holding.wait(PROBE_SECONDS)
    assert locks.acquire("a", timeout=0) is False
    # Another workload is not blocked.
    assert locks.acquire("b", timeout=0) is True
    locks.release("b")
    with pytest.raises(Conflict):
        with locks.hold("a", timeout=0.2):
            pass
    release.set()
    t.join(PROBE_SECONDS)
    assert not t.is_alive()
    assert locks.acquire("a", timeout=PROBE_SECONDS) is True
    locks.release("a")


def test_the_holder_can_take_it_again_without_deadlock() -> None:
    locks = WorkloadLocks()
    done = threading.Event()

    def restore_then_redeploy() -> None:
        with locks.hold("w"), locks.hold("w"):
            done.set()

    t = in_thread(restore_then_redeploy)
    assert done.wait(PROBE_SECONDS), "re-entrant hold deadlocked"
    t.join(PROBE_SECONDS)


def test_locks_are_forgotten_when_free() -> None:
    locks = WorkloadLocks()
    for key in ("a", "b", "c"):
        with locks.hold(key):
            pass
    assert locks._locks == {}
