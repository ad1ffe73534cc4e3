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

- ``Priority.foreground()``: a block of latency-bound work. It never waits itself; the
  first open block calls the ``Priority.on_open`` callbacks, which must not block.
- ``Priority.urgent()``: a request the event loop serves that background work yields
  to, from its whole body to its answer (a webhook call: ``api/urgency.py``). Background
  threads wait at their checkpoints while one is open, as for a foreground block; the
  loop does not step aside (it serves the request, and waits for its work with
  ``run_first``), no ``on_open`` callback is called,
  and it may be held across ``await``. Under a closed loop of reads, the phases of a
  delivery outside its foreground block (its head, its thread's start before the block,
  its answer) were about half its answer time, each stretched by the deploy workers'
  share of the interpreter.
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
  ``LOOP_PAUSE`` s, under the same run-as-long-as-it-waited rule: a read waits at most
  that long (a delivery is about 20 ms of work), and a stream of deliveries at most
  halves the loop's time. It stops early while another thread's connection is inside a
  transaction (a request the loop must finish, holding locks a delivery may need).
  Deliveries share one budget of foreground blocks (``services/hooks``:
  ``FOREGROUND_PER_MINUTE``, 2 a second), so neither many triggers nor a leaked URL of
  an unsigned one can keep the loop at that half; past it a delivery is ordinary work.
- ``Priority.run_first(work, pool)``: the event loop hands an urgent request's work to a
  thread and waits for it (at most ``LOOP_PAUSE`` s, and not while another request holds
  a transaction, as for ``step_aside``), so the work has the interpreter to itself and
  its answer needs no second turn of a busy loop. ``run_first`` and ``step_aside``
  share one budget: in a row they block the loop at most ``LOOP_PAUSE`` s in all, then
  it runs as long as it waited (a burst of urgent calls, and a call's own
  ``step_aside``, are not ``LOOP_PAUSE`` each). Under 8 closed-loop readers and a
  200-way fan-out of container deploys every 2 s, a webhook call's hop to its thread,
  the thread's wait for the GIL before its foreground block, and its hop back were each
  about 7-10 ms of a 100 ms answer; ``step_aside``, scheduled by ``on_open``, starts only
  after the loop's ready callbacks have run.
- ``Priority.watch(engine)``: every statement a background thread sends while no
  connection it has checked out has a transaction open (SQLite: no ``BEGIN`` yet, as
  ``sqlite3`` begins one only before a write; PostgreSQL: the first statement of a
  transaction) is a checkpoint. Inside a transaction it never waits: a paused writer
  would keep SQLite's write lock, or PostgreSQL row locks, from the foreground block
  that needs them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_for
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Engine, event

from moorage import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PAUSE = 0.25  # seconds a background thread waits at one checkpoint, at most
LOOP_PAUSE = 0.1  # seconds the event loop steps aside at a time, at most (SPEC 8: 100 ms)
LOOP_POLL = 0.002  # seconds between a stepping-aside loop's looks at what others hold
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

    def __init__(self, max_pause: float = MAX_PAUSE, loop_pause: float = LOOP_PAUSE) -> None:
        self.max_pause = max_pause
        self.loop_pause = loop_pause
        self._lock = threading.Lock()
        self._clear = threading.Event()
        self._clear.set()
        self._local = threading.local()
        self._openers: list[Callable[[], object]] = []
        self._in_blocks: dict[int, int] = {}  # thread ident -> its open blocks (none: idle)
        self._urgent = 0  # open ``urgent`` blocks, of any thread
        self._first: dict[int, int] = {}  # thread ident -> its ``run_first`` work running
        self._unfinished: dict[int, int] = {}  # id(pool) -> its ``run_first`` works not done
        self._others: dict[int, tuple[Any, int]] = {}  # id(record) -> (record, owner)
        self.pauses = 0
        """Checkpoints that waited; ``/metrics`` has their time as
        ``moorage_background_paused_seconds_total``."""
        self.paused_seconds = 0.0
        self.loop_pauses = 0
        """Times the event loop stepped aside; ``/metrics`` has their time as
        ``moorage_event_loop_paused_seconds_total``."""
        self.loop_paused_seconds = 0.0

    @contextmanager
    def foreground(self) -> Iterator[None]:
        """Background threads wait at their checkpoints until the block ends, and the
        ``on_open`` callbacks are called when it is the first open one (an error of one is
        logged, never raised: the block opens regardless). Never open a block on the
        event loop's thread, nor hold one across an ``await``: the loop would wait for
        itself until ``loop_pause`` ran out."""
        me = threading.get_ident()
        with self._lock:
            first = not self._in_blocks
            self._in_blocks[me] = self._in_blocks.get(me, 0) + 1
            self._clear.clear()
        try:
            if first:
                for opened in list(self._openers):
                    try:
                        opened()
                    except Exception:
                        log.warning("a foreground block's on_open call failed", exc_info=True)
            yield
        finally:
            with self._lock:
                self._in_blocks[me] -= 1
                if not self._in_blocks[me]:
                    del self._in_blocks[me]
                if not self._in_blocks and not self._urgent:
                    self._clear.set()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Background threads wait at their checkpoints until the block ends (as for
        ``foreground``); the event loop's ``step_aside`` does not, and no ``on_open``
        callback is called, so the loop may open one around a request it serves,
        across ``await``."""
        with self._lock:
            self._urgent += 1
            self._clear.clear()
        try:
            yield
        finally:
            with self._lock:
                self._urgent -= 1
                if not self._in_blocks and not self._urgent:
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
        """Wait while a foreground or urgent block is open, if the calling thread is background
        work: at most ``max_pause`` s, and not again until it has run as long as it
        waited. Call it only where the thread holds nothing a foreground block may need."""
        if not self._holding() or not getattr(self._local, "background", False):
            return
        waited = self._wait(self.max_pause)
        if waited is not None:
            metrics.BACKGROUND_PAUSED.inc(waited)
            with self._lock:
                self.pauses += 1
                self.paused_seconds += waited

    def step_aside(self) -> None:
        """The event loop's pause (scheduled on it by the ``on_open`` call the API's
        lifespan registers): block the calling thread while a foreground block is open, at
        most ``loop_pause`` s, and not again until it has run as long as it waited.

        It stops early when a connection that no block's thread and no background thread
        has checked out is inside a transaction (``watch`` keeps them): that is a request
        whose session ends on a worker thread the loop must schedule (FastAPI's
        dependency exit commits it), holding SQLite's write lock or PostgreSQL row locks
        a delivery may need."""
        if self._in_blocks:
            self._block_loop(lambda: not self._in_blocks, self._clear.wait)

    def run_first(self, work: Callable[[], T], pool: Executor) -> Future[T]:
        """Run ``work`` on a thread of ``pool`` while the calling thread (the event loop)
        waits for it, letting go of the GIL: ``work`` runs as if alone in the interpreter,
        with no hop back to a busy loop to wait for. The wait lasts at most ``loop_pause``
        s, and ends early on ``step_aside``'s rule (a connection another thread checked out
        has a transaction open: ``work`` may need its locks, and it may need the loop to
        commit). ``work``'s own connections do not count. It does not wait at all when
        every thread of ``pool`` already runs earlier work, nor past the budget it
        shares with ``step_aside`` (``_loop_allowance``).

        Returns ``work``'s future: done, unless the wait ended first (then the caller
        awaits it). Raises what ``pool.submit`` raises (``RuntimeError`` once it is shut
        down). The caller bounds how often it waits (``api/urgency``: ``HookFirst``'s
        rate); the loop's waits count in ``loop_pauses``."""

        def job() -> T:
            me = threading.get_ident()
            with self._lock:
                self._first[me] = self._first.get(me, 0) + 1
            try:
                return work()
            finally:
                with self._lock:
                    self._first[me] -= 1
                    if not self._first[me]:
                        del self._first[me]

        def done(_future: Future[T]) -> None:
            with self._lock:
                self._unfinished[id(pool)] -= 1
                if not self._unfinished[id(pool)]:
                    del self._unfinished[id(pool)]

        with self._lock:
            ahead = self._unfinished.get(id(pool), 0)
            self._unfinished[id(pool)] = ahead + 1
        try:
            future = pool.submit(job)
        except BaseException:
            done(Future())
            raise
        future.add_done_callback(done)
        if ahead >= getattr(pool, "_max_workers", ahead + 1):
            # Every thread of the pool has earlier work: this one waits in its queue, and
            # the loop would wait for nothing (four works stuck on a lock made each later
            # urgent call block the loop its whole bound).
            return future
        self._block_loop(future.done, lambda seconds: wait_for([future], timeout=seconds))
        return future

    def _block_loop(self, over: Callable[[], bool], wait: Callable[[float], object]) -> None:
        """Block the calling thread (the event loop) until ``over()``, looked at after each
        ``wait(seconds)`` of at most ``LOOP_POLL``: within what ``_loop_allowance`` leaves
        (none: no wait at all, the loop has waited its share), and not once a connection
        another thread checked out has a transaction open. The wait counts into the
        streak and ``loop_pauses``; one that never began does not."""
        most = self._loop_allowance()
        if most <= 0:
            return
        start = time.monotonic()
        deadline = start + most
        while not over() and not self._others_in_transaction():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait(min(LOOP_POLL, left))
        self._loop_waited(time.monotonic() - start)

    def _loop_allowance(self) -> float:
        """Seconds the calling thread (the event loop) may block now, for ``step_aside``
        and ``run_first`` together: what is left of ``loop_pause`` in its current streak
        of waits (a streak ends once the loop has run as long as it waited), and nothing
        until it has run as long as its last full streak waited. Without one budget a
        burst of urgent calls blocked the loop ``loop_pause`` each, back to back (four
        forged calls: 0.41 s), and a call's ``run_first`` and the ``step_aside`` its
        foreground block scheduled 0.2 s."""
        local = self._local
        now = time.monotonic()
        if now < getattr(local, "loop_free_until", 0.0):
            return 0.0
        streak = getattr(local, "streak", 0.0)
        if now >= getattr(local, "streak_end", 0.0) + streak:
            local.streak = streak = 0.0
        return max(0.0, self.loop_pause - streak)

    def _loop_waited(self, waited: float) -> None:
        """Count a wait of the event loop into its streak (``_loop_allowance``) and into
        ``loop_pauses``."""
        local = self._local
        now = time.monotonic()
        local.streak = getattr(local, "streak", 0.0) + waited
        local.streak_end = now
        if local.streak >= self.loop_pause:
            local.loop_free_until = now + local.streak
        metrics.LOOP_PAUSED.inc(waited)
        with self._lock:
            self.loop_pauses += 1
            self.loop_paused_seconds += waited

    def on_open(self, opened: Callable[[], object]) -> Callable[[], None]:
        """Call ``opened()`` (on the opening thread, so it must not block: schedule work
        elsewhere) whenever a foreground block opens while none is; returns the call that
        undoes this (once or more)."""
        self._openers.append(opened)

        def undo() -> None:
            with suppress(ValueError):
                self._openers.remove(opened)

        return undo

    def _wait(self, most: float) -> float | None:
        """A background thread's pause until no block is open, at most ``most`` s;
        ``None`` when it did not wait because it has not yet run as long as it last
        waited, else the time waited."""
        now = time.monotonic()
        if now < getattr(self._local, "free_until", 0.0):
            return None
        self._clear.wait(most)
        waited = time.monotonic() - now
        self._local.free_until = now + 2 * waited
        return waited

    def _others_in_transaction(self) -> bool:
        """Whether a connection checked out by a thread that is neither background work,
        nor in a block, nor running ``run_first`` work has a transaction open."""
        with self._lock:
            blocked = set(self._in_blocks) | set(self._first)
        return any(
            owner not in blocked and in_transaction(record.dbapi_connection)
            for record, owner in list(self._others.values())
        )

    def _holding(self) -> bool:
        """Whether background threads wait at their checkpoints now."""
        return bool(self._in_blocks or self._urgent)

    @property
    def busy(self) -> bool:
        """Whether a foreground block is open."""
        return bool(self._in_blocks)

    def watch(self, engine: Engine) -> None:
        """Make each statement a background thread sends on ``engine`` a checkpoint while
        none of the connections the thread has checked out has a transaction open (see
        the module docstring): a thread that holds a write in one session and opens
        another never waits.

        A background thread's checked-out connections are kept by their pool record, and
        the record names the list it is on, so a connection checked in by another thread
        (FastAPI ends a dependency on another worker thread) or invalidated (``checkin``
        then gets no DB-API connection) still leaves it. Other threads' connections are
        kept by record too, with the thread that checked them out, for ``step_aside``."""
        local = self._local

        def checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            if getattr(local, "background", False):
                held = local.__dict__.setdefault("held", [])
                held.append(record)
                record.info[HELD_BY] = held
            else:
                self._others[id(record)] = (record, threading.get_ident())

        def checkin(_dbapi_connection: Any, record: Any) -> None:
            self._others.pop(id(record), None)
            held = record.info.pop(HELD_BY, None)
            if held is not None:
                with suppress(ValueError):
                    held.remove(record)

        def before(*_args: Any) -> None:
            if not self._holding() or not getattr(local, "background", False):
                return
            records = tuple(getattr(local, "held", ()))
            if not any(in_transaction(r.dbapi_connection) for r in records):
                self.checkpoint()

        event.listen(engine, "checkout", checkout)
        event.listen(engine, "checkin", checkin)
        event.listen(engine, "before_cursor_execute", before)
