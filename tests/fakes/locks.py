"""A workload's lock held by another thread, as a running deploy, capture or restore
holds it (``services/locks.py``): the lock is re-entrant, so a test's own thread could
never be kept out by a hold of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from moorage.services.locks import WorkloadLocks


@contextmanager
def held_elsewhere(locks: WorkloadLocks, workload_id: str) -> Iterator[None]:
    """Hold ``workload_id``'s lock on another thread for the length of the block."""
    taken, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locks.hold(workload_id, timeout=1):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert taken.wait(5), "the lock was not free to take"
        yield
    finally:
        release.set()
        thread.join(10)
