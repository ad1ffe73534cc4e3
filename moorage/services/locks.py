"""The per-workload lock every entry point that changes a workload takes.

One re-entrant lock per workload id: deploy, teardown, reconcile, restore, capture
and every API change (``services.guard``) serialize per workload and run in
parallel across workloads. Re-entrant, so a caller holding it (a restore, a guarded
route) can redeploy, reconcile or tear down inside it without deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from moorage.errors import Conflict


class WorkloadLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, int]] = {}

    def _ref(self, key: str) -> threading.RLock:
        with self._guard:
            lock, refs = self._locks.get(key, (threading.RLock(), 0))
            self._locks[key] = (lock, refs + 1)
            return lock

    def _unref(self, key: str) -> None:
        with self._guard:
            lock, refs = self._locks[key]
            if refs <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, refs - 1)

    def acquire(self, key: str, *, timeout: float | None = None) -> bool:
        """Take the lock; ``timeout=0`` tries once, None waits for ever."""
        lock = self._ref(key)
        got = lock.acquire(blocking=timeout != 0, timeout=-1 if not timeout else timeout)
        if not got:
            self._unref(key)
        return got

    def release(self, key: str) -> None:
        with self._guard:
            lock, _ = self._locks[key]
        lock.release()
        self._unref(key)

    @contextmanager
    def hold(self, key: str, *, timeout: float | None = None) -> Iterator[None]:
        if not self.acquire(key, timeout=timeout):
            raise Conflict(
                "another change, deploy, teardown or restore of this workload is running; "
                "try again when it has finished",
                code="workload_busy",
            )
        try:
            yield
        finally:
            self.release(key)
