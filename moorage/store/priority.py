"""Foreground work ahead of background threads in one interpreter: a webhook delivery
ahead of the deploy workers (SPEC section 8: a 200-way fan-out answered in <= 100 ms).

Why it is needed: CPython's GIL has no priorities. A thread that wants it waits one
switch interval (``sys.getswitchinterval()``, 5 ms), asks the holder to let go, and then
races every other waiting thread for it; a thread that does I/O (each SQLite step, each
Docker API call) lets go and races again. A delivery that runs a dozen statements among
four deploy workers that run queued deploys back to back therefore gets a fraction of
the interpreter: on two cores, under a 200-way fan-out every 2 s, the workers held about
70% of it (``python -m bench list_under_load``; per-thread CPU from ``/proc``).

The contract:

- ``Priority.foreground()``: a block of latency-bound work. It never waits itself.
- ``Priority.background()``: marks the calling thread's block as background work.
- ``Priority.checkpoint()``: a background thread's safe point. While any foreground
  block is open it waits, then goes on; it waits at most ``MAX_PAUSE`` s at a time, and
  after a wait it runs for as long as it waited before it can wait again, so a stream of
  foreground work at most halves background work and never stops it (and a foreground
  block that needs something a waiting thread holds is delayed, never deadlocked).
- ``Priority.step_aside()``: the event loop's safe point (``Priority.on_open`` has the
  API's lifespan schedule it on the loop whenever a first block opens). The loop serves
  every request, and under a closed loop of reads it held half of the interpreter, so a
  delivery's thread waited for the GIL behind it at every statement. The loop blocks
  (waiting on an event, which lets go of the GIL) until the block ends, at most
  ``LOOP_PAUSE`` s, under the same run-as-long-as-it-waited rule: reads wait out a
  delivery (about 20 ms of work), and a stream of deliveries at most halves them.
- ``Priority.watch(engine)``: every statement a background thread sends while no
  connection it has checked out has a transaction open (SQLite: no ``BEGIN`` yet, as
  ``sqlite3`` begins one only before a write; PostgreSQL: the first statement of a
  transaction) is a checkpoint. Inside a transaction it never waits: a paused writer
  would keep SQLite's write lock, or PostgreSQL row locks, from the foreground block
  that needs them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Engine, event

from moorage import metrics

MAX_PAUSE = 0.25  # seconds a background thread waits at one checkpoint, at most
LOOP_PAUSE = 0.1  # seconds the event loop steps aside at a time, at most (SPEC 8: 100 ms)
IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the connection
HELD_BY = "moorage.priority.held_by"  # a pool record's info: the list it is on


def in_transaction(dbapi_connection: Any) -> bool:
    """Whether a DB-API connection has a transaction open: ``sqlite3``'s
    ``in_transaction``, psycopg 3's ``info.transaction_status``. A closed (or no)
    connection holds nothing: False. True for a driver it does not know (so nothing
    waits where it could hold a lock)."""
    if dbapi_connection is None or getattr(dbapi_connection, "closed", False) is True:
        return False
    try:
        flag = getattr(dbapi_connection, "in_transaction", None)
        if isinstance(flag, bool):
            return flag
        status = getattr(getattr(dbapi_connection, "info", None), "transaction_status", None)
    except Exception:  # sqlite3 raises ProgrammingError once the connection is closed
        return False
    if status is not None:
        return bool(status != IDLE)
    return True


class Priority:
    """One process's foreground blocks and the background threads that yield to them."""

    def __init__(self, max_pause: float = MAX_PAUSE) -> None:
        self.max_pause = max_pause
        self._open = 0
        self._lock = threading.Lock()
        self._clear = threading.Event()
        self._clear.set()
        self._local = threading.local()
        self._openers: list[Callable[[], object]] = []
        self.pauses = 0
        """Checkpoints that waited; ``/metrics`` has their time as
        ``moorage_background_paused_seconds_total``."""
        self.paused_seconds = 0.0

    @contextmanager
    def foreground(self) -> Iterator[None]:
        """Background threads wait at their checkpoints until the block ends."""
        with self._lock:
            self._open += 1
            first = self._open == 1
            self._clear.clear()
        if first:
            for opened in list(self._openers):
                opened()
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                if self._open == 0:
                    self._clear.set()

    @contextmanager
    def background(self) -> Iterator[None]:
        """The calling thread's checkpoints inside the block may wait."""
        was = getattr(self._local, "background", False)
        self._local.background = True
        try:
            yield
        finally:
            self._local.background = was

    def checkpoint(self) -> None:
        """Wait while a foreground block is open, if the calling thread is background
        work: at most ``max_pause`` s, and not again until it has run as long as it
        waited. Call it only where the thread holds nothing a foreground block may need."""
        if self._open == 0 or not getattr(self._local, "background", False):
            return
        self._wait(self.max_pause)

    def step_aside(self, most: float = LOOP_PAUSE) -> None:
        """Block the calling thread (an event loop, from a callback ``on_open`` scheduled)
        while a foreground block is open: at most ``most`` s, and not again until it has
        run as long as it waited. Any thread may call it; it holds nothing meanwhile."""
        if self._open:
            self._wait(most)

    def on_open(self, opened: Callable[[], object]) -> Callable[[], None]:
        """Call ``opened()`` (on the opening thread, so it must not block: schedule work
        elsewhere) whenever a foreground block opens while none is; returns the call that
        undoes this."""
        self._openers.append(opened)
        return lambda: self._openers.remove(opened)

    def _wait(self, most: float) -> None:
        """The calling thread's pause: until no block is open, at most ``most`` s, unless
        it has not yet run as long as it last waited."""
        now = time.monotonic()
        if now < getattr(self._local, "free_until", 0.0):
            return
        self._clear.wait(most)
        waited = time.monotonic() - now
        self._local.free_until = now + 2 * waited
        metrics.BACKGROUND_PAUSED.inc(waited)
        with self._lock:
            self.pauses += 1
            self.paused_seconds += waited

    @property
    def busy(self) -> bool:
        """Whether a foreground block is open."""
        return self._open > 0

    def watch(self, engine: Engine) -> None:
        """Make each statement a background thread sends on ``engine`` a checkpoint while
        none of the connections the thread has checked out has a transaction open (see
        the module docstring): a thread that holds a write in one session and opens
        another never waits.

        A background thread's checked-out connections are kept by their pool record, and
        the record names the list it is on, so a connection checked in by another thread
        (FastAPI ends a dependency on another worker thread) or invalidated (``checkin``
        then gets no DB-API connection) still leaves it. Other threads keep nothing."""
        local = self._local

        def checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            if getattr(local, "background", False):
                held = local.__dict__.setdefault("held", [])
                held.append(record)
                record.info[HELD_BY] = held

        def checkin(_dbapi_connection: Any, record: Any) -> None:
            held = record.info.pop(HELD_BY, None)
            if held is not None:
                with suppress(ValueError):
                    held.remove(record)

        def before(*_args: Any) -> None:
            if not self._open or not getattr(local, "background", False):
                return
            records = tuple(getattr(local, "held", ()))
            if not any(in_transaction(r.dbapi_connection) for r in records):
                self.checkpoint()

        event.listen(engine, "checkout", checkout)
        event.listen(engine, "checkin", checkin)
        event.listen(engine, "before_cursor_execute", before)
