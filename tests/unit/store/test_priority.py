"""Foreground blocks ahead of background threads (``store/priority.py``), on SQLite and
PostgreSQL: a background thread waits at its checkpoints while a block is open, never
inside a transaction, never for long, and never for good."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from moorage.store.db import Database
from moorage.store.priority import Priority, in_transaction
from tests.unit.store import test_store

db, pg_url = test_store.db, test_store.pg_url
LONG = 30.0  # a pause bound no test reaches: what ends a wait there is the block closing


def steps(*calls: Callable[[], object]) -> Callable[[], None]:
    """One callable that makes ``calls`` in order."""

    def run() -> None:
        for call in calls:
            call()

    return run


def in_background(priority: Priority, body: Callable[[], object]) -> threading.Thread:
    """Run ``body`` in a thread marked as background work; the thread is started."""

    def run() -> None:
        with priority.background():
            body()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_background_checkpoint_waits_for_the_open_block_and_then_goes_on() -> None:
    priority = Priority(max_pause=LONG)
    passed = threading.Event()
    with priority.foreground():
        thread = in_background(priority, steps(priority.checkpoint, passed.set))
        assert not passed.wait(0.3)  # held at the checkpoint while the block is open
    assert passed.wait(10)
    thread.join(10)
    assert priority.pauses == 1


def test_other_threads_and_closed_blocks_never_wait() -> None:
    priority = Priority(max_pause=LONG)
    with priority.foreground():
        priority.checkpoint()  # this thread is not background work: it goes on
        with priority.foreground():  # blocks nest
            priority.checkpoint()
    passed = threading.Event()
    in_background(priority, steps(priority.checkpoint, passed.set)).join(10)
    assert passed.is_set()  # no block is open
    assert priority.pauses == 0


def test_a_block_that_never_ends_slows_background_work_but_never_stops_it() -> None:
    priority = Priority(max_pause=0.05)
    done = threading.Event()

    def work() -> None:
        for _ in range(20):
            priority.checkpoint()
        done.set()

    with priority.foreground():
        in_background(priority, work)
        assert done.wait(10)  # 20 checkpoints under a block that stays open
        # A wait is followed by a run as long as it: most checkpoints did not wait.
        assert 1 <= priority.pauses < 20


def test_a_step_aside_waits_for_the_open_block_of_any_thread_and_only_then() -> None:
    """The event loop's pause (``step_aside``) needs no background mark: it waits while a
    block is open, and returns at once when none is."""
    priority = Priority(loop_pause=LONG)
    priority.step_aside()  # no block: no wait
    assert priority.loop_pauses == 0
    passed = threading.Event()
    with priority.foreground():
        thread = threading.Thread(target=steps(priority.step_aside, passed.set), daemon=True)
        thread.start()
        assert not passed.wait(0.3)
    assert passed.wait(10)
    thread.join(10)
    assert (priority.loop_pauses, priority.pauses) == (1, 0)


def test_a_step_aside_is_bounded_and_then_runs_as_long_as_it_waited() -> None:
    priority = Priority(loop_pause=0.2)
    with priority.foreground():
        priority.step_aside()  # the block stays open: the bound ends the wait
        priority.step_aside()  # at once: it has not yet run as long as it waited
    assert priority.loop_pauses == 1
    assert 0.2 <= priority.loop_paused_seconds < 5.0


def test_on_open_is_called_when_a_first_block_opens_until_undone() -> None:
    priority = Priority()
    opened: list[bool] = []
    undo = priority.on_open(lambda: opened.append(priority.busy))
    with priority.foreground():
        with priority.foreground():  # nested: already open, not called again
            pass
    with priority.foreground():
        pass
    assert opened == [True, True]  # called with the block already open
    undo()
    undo()  # undoing twice is harmless
    with priority.foreground():
        pass
    assert opened == [True, True]


def test_an_urgent_block_holds_background_work_but_not_the_loop() -> None:
    """``urgent`` is the event loop's block around a request it serves (a webhook call,
    ``api/urgency.py``): background threads wait at their checkpoints until it ends,
    as for a foreground block, but ``step_aside`` never waits for it (the loop would
    wait for the request it must serve) and no ``on_open`` callback is called. With a
    foreground block open too, the background waits until both end."""
    priority = Priority(max_pause=LONG, loop_pause=LONG)
    opened: list[bool] = []
    priority.on_open(lambda: opened.append(True))
    passed = threading.Event()
    with priority.urgent():
        priority.step_aside()  # at once
        with priority.urgent():  # they nest
            thread = in_background(priority, steps(priority.checkpoint, passed.set))
        assert not passed.wait(0.3)  # the outer one is still open
        block = priority.foreground()
        block.__enter__()
    assert not passed.wait(0.3)  # the foreground block is still open
    block.__exit__(None, None, None)
    assert passed.wait(10)
    thread.join(10)
    assert (priority.pauses, priority.loop_pauses, opened) == (1, 0, [True])
    assert not priority.busy
    priority.checkpoint()  # nothing open: nothing waits


def test_a_failing_on_open_call_neither_fails_the_block_nor_leaves_it_open() -> None:
    priority = Priority()

    def broken() -> None:
        raise RuntimeError("the loop is closed")

    priority.on_open(broken)
    ran = False
    with priority.foreground():
        ran = True
    assert ran and not priority.busy
    priority.checkpoint()  # nothing open: nothing waits


def test_a_step_aside_ends_when_another_request_holds_a_transaction(db: Database) -> None:
    """A connection a plain thread (an API request's worker) holds inside a transaction
    ends the loop's pause: that request may need the loop to commit (FastAPI ends its
    session in a dependency exit the loop schedules), and the block may need its locks.
    The block's own thread and background threads do not count."""
    priority = probed(db)
    priority.loop_pause = LONG
    holding, release = threading.Event(), threading.Event()

    with priority.foreground():
        with db.session() as s:  # the block's own transaction does not end the pause
            s.execute(text("UPDATE probe SET n = n + 2 WHERE id = 1"))
            started = time.monotonic()
            stepped = threading.Thread(target=priority.step_aside, daemon=True)
            stepped.start()
            assert stepped.is_alive()
            assert priority.loop_pauses == 0
            s.rollback()
        time.sleep(0.1)
        assert stepped.is_alive()  # still aside: no one else is in a transaction
        writer = held_write(db, holding, release)
        assert holding.wait(10)
        stepped.join(10)
        assert not stepped.is_alive()  # the open write ended the pause, not the block
        assert time.monotonic() - started < LONG
    release.set()
    writer.join(10)
    assert priority.loop_pauses == 1


def test_run_first_waits_for_its_work_whose_own_transaction_does_not_end_the_wait(
    db: Database,
) -> None:
    """The calling thread (the event loop) waits until the work is done, on both
    databases, though the work holds a write open meanwhile: the wait ends on another
    thread's transaction, never on the work's own."""
    priority = probed(db)
    priority.loop_pause = LONG
    ran: list[str] = []

    def work() -> int:
        with db.session() as s:
            s.execute(text("UPDATE probe SET n = n + 1 WHERE id = 1"))
            time.sleep(0.2)  # the write stays open
            s.commit()
        ran.append(threading.current_thread().name)
        return 7

    with ThreadPoolExecutor(1, thread_name_prefix="first") as pool:
        started = time.monotonic()
        future = priority.run_first(work, pool)
        assert future.done()  # returned only once the work was
        assert time.monotonic() - started >= 0.2
        assert future.result() == 7
    assert ran == ["first_0"]
    assert priority.loop_pauses == 1
    assert not priority._first  # the work's thread no longer counts as the work's


def test_run_first_is_bounded_and_ends_when_another_request_holds_a_transaction(
    db: Database,
) -> None:
    """The wait ends at ``loop_pause``, or as soon as a connection of another (not
    background) thread is inside a transaction, as ``step_aside``'s does: that request
    may need the loop to commit. The work goes on either way; its future tells when it
    ends."""
    priority = probed(db)
    release, holding, let_go = threading.Event(), threading.Event(), threading.Event()

    with ThreadPoolExecutor(1) as pool:
        priority.loop_pause = 0.05
        future = priority.run_first(lambda: release.wait(30), pool)
        assert not future.done()  # the bound ended the wait
        release.set()
        assert future.result(10) is True
        release.clear()
        time.sleep(0.06)  # the loop has run as long as it waited: it may wait again
        priority.loop_pause = LONG
        writer = held_write(db, holding, let_go)
        assert holding.wait(10)
        started = time.monotonic()
        future = priority.run_first(lambda: release.wait(30), pool)
        assert not future.done()  # the open write ended it, not the bound
        assert time.monotonic() - started < LONG
        release.set()
        let_go.set()
        writer.join(10)
        assert future.result(10) is True
    assert priority.loop_pauses == 2


def test_the_background_mark_ends_with_its_block() -> None:
    priority = Priority(max_pause=LONG)
    passed = threading.Event()

    def body() -> None:
        with priority.background():
            pass
        with priority.foreground():
            priority.checkpoint()  # no longer background work
        passed.set()

    threading.Thread(target=body, daemon=True).start()
    assert passed.wait(10)
    assert priority.pauses == 0


def held_write(
    db: Database, holding: threading.Event, release: threading.Event
) -> threading.Thread:
    """A started thread that leaves a write to ``probe`` open, as a route that returned
    before its session's commit leaves it: ``holding`` is set once it is, and the thread
    commits and ends at ``release`` (or after 30 s)."""

    def request() -> None:
        with db.session() as s:
            s.execute(text("UPDATE probe SET n = n + 1 WHERE id = 1"))
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    return thread


def probed(db: Database) -> Priority:
    """``db``'s priority, with pauses no test reaches, over a table ``probe`` of one row
    ``(1, 0)`` made anew (PostgreSQL's outlives a test)."""
    db.priority.max_pause = LONG
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS probe"))
        conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(text("INSERT INTO probe (id, n) VALUES (1, 0)"))
    return db.priority


def test_a_statement_outside_a_transaction_is_a_checkpoint_and_one_inside_is_not(
    db: Database,
) -> None:
    """On both databases: a background thread's first statement waits for the block; once
    it has written (SQLite's write lock, PostgreSQL's row locks held) nothing waits, so
    the block's own write of the same row gets through as soon as the thread commits."""
    priority = probed(db)
    wrote, read = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def writer() -> None:
        with db.session() as s:
            s.execute(text("UPDATE probe SET n = n + 1 WHERE id = 1"))
            outcome["open"] = in_transaction(s.connection().connection.dbapi_connection)
            wrote.set()
            read.wait(10)  # the block is open now
            s.execute(text("UPDATE probe SET n = n + 10 WHERE id = 1"))  # must not wait

    thread = in_background(priority, writer)
    assert wrote.wait(10)  # its first write went before any block: it holds the lock
    with priority.foreground():
        read.set()
        with db.session() as s:  # waits for the writer's lock, which it lets go
            s.execute(text("UPDATE probe SET n = n + 100 WHERE id = 1"))
        thread.join(10)
        assert not thread.is_alive()
    assert outcome["open"] is True
    assert priority.pauses == 0
    with db.session() as s:
        assert s.execute(text("SELECT n FROM probe")).scalar_one() == 111

    started = threading.Event()
    with priority.foreground():
        thread = in_background(priority, steps(started.set, lambda: _select_one(db)))
        assert started.wait(10)
        thread.join(0.3)
        assert thread.is_alive()  # its first statement waits for the block
    thread.join(10)
    assert priority.pauses == 1


def test_a_thread_holding_a_write_in_one_session_does_not_wait_in_another(
    db: Database,
) -> None:
    """Its write lock would keep the block waiting as long as it waited."""
    priority = probed(db)
    wrote, opened, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with db.session() as outer:
            outer.execute(text("UPDATE probe SET n = n + 1 WHERE id = 1"))
            wrote.set()
            opened.wait(10)
            with db.session() as inner:  # a connection of its own, no transaction yet
                inner.execute(text("SELECT 1"))
        done.set()

    thread = in_background(priority, writer)
    assert wrote.wait(10)
    with priority.foreground():
        opened.set()
        assert done.wait(10)  # the inner statement did not wait for the block
    thread.join(10)
    assert priority.pauses == 0
    assert not priority.busy


def _select_one(db: Database) -> None:
    with db.session() as s:
        s.execute(text("SELECT 1"))


def test_an_unknown_driver_counts_as_in_a_transaction_and_a_closed_one_as_not() -> None:
    """A driver whose transaction state cannot be read never waits (it might hold locks);
    a closed connection (or none, as an invalidated one checks in) holds nothing."""
    assert in_transaction(object()) is True
    closed = sqlite3.connect(":memory:")
    closed.execute("CREATE TABLE t (n INTEGER)")
    closed.execute("INSERT INTO t VALUES (1)")
    assert in_transaction(closed) is True
    closed.close()
    assert in_transaction(closed) is False
    assert in_transaction(None) is False


def held(priority: Priority) -> list[object]:
    """What a thread's checkpoint looks at: the pool records it has checked out."""
    return list(getattr(priority._local, "held", []))


def test_a_connection_checked_in_by_another_thread_or_invalidated_leaves_the_list(
    db: Database,
) -> None:
    """FastAPI ends a dependency (its session) on another worker thread than the route's;
    an invalidated connection checks in without its DB-API connection. Neither stays on
    the background thread's list, and other threads keep no list."""
    priority = db.priority
    with priority.background():
        connection = db.engine.connect()
        connection.execute(text("SELECT 1"))
        assert len(held(priority)) == 1
        closer = threading.Thread(target=connection.close)
        closer.start()
        closer.join(10)
        assert held(priority) == []

        connection = db.engine.connect()
        connection.execute(text("SELECT 1"))
        connection.invalidate()
        connection.close()
        assert held(priority) == []

        with db.session() as s:  # and what stays checked out is seen as usual
            s.execute(text("SELECT 1"))
            assert len(held(priority)) == 1
        assert held(priority) == []
    with db.session() as s:
        s.execute(text("SELECT 1"))
        assert held(priority) == []  # not background work: nothing kept


def test_the_loop_waits_at_most_loop_pause_in_a_row_for_run_first_and_step_aside() -> None:
    """``run_first`` and ``step_aside`` share one budget: back to back they block the
    loop at most ``loop_pause`` in all, then the loop runs as long as it waited. A burst
    of four urgent calls whose work outlasted the bound blocked it 0.4 s in a row, and a
    call's ``run_first`` and the ``step_aside`` its foreground block scheduled 0.2 s."""
    priority = Priority(loop_pause=0.1)
    release = threading.Event()
    with ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        futures = [priority.run_first(lambda: release.wait(30), pool) for _ in range(4)]
        with priority.foreground():
            priority.step_aside()
        blocked = time.monotonic() - started
        release.set()
        assert all(f.result(10) for f in futures)
    assert 0.1 <= blocked < 0.4, blocked  # not 0.1 s per call and one for the block: 0.5
    assert priority.loop_pauses == 1
    time.sleep(0.12)  # the loop ran as long as it waited: a new wait may come
    with priority.foreground():
        priority.step_aside()
    assert priority.loop_pauses == 2


def test_short_waits_of_the_loop_add_up_to_one_bound_in_a_row() -> None:
    """Works shorter than the bound, back to back: the loop waits for each until their
    waits reach ``loop_pause``; the next is awaited while the loop serves."""
    priority = Priority(loop_pause=0.5)
    done: list[bool] = []
    with ThreadPoolExecutor(1) as pool:
        for _ in range(4):
            future = priority.run_first(lambda: time.sleep(0.15), pool)
            done.append(future.done())
            future.result(10)
    assert done[0] is True and done[3] is False, done
    assert priority.loop_paused_seconds < 0.7


def test_run_first_does_not_wait_for_a_work_no_thread_of_its_pool_is_free_for() -> None:
    """When every thread of the pool has earlier ``run_first`` work, a new work waits
    in the pool's queue: the loop does not wait for it (it would block its whole bound
    for nothing; four works stuck on a lock made every later urgent call do so)."""
    priority = Priority(loop_pause=0.05)
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        stuck = priority.run_first(lambda: release.wait(30), pool)
        assert not stuck.done()
        time.sleep(0.12)  # the loop ran as long as it waited
        priority.loop_pause = LONG
        started = time.monotonic()
        queued = priority.run_first(lambda: 5, pool)
        assert time.monotonic() - started < 1.0
        assert not queued.done()
        release.set()
        assert queued.result(10) == 5
        assert stuck.result(10) is True
    assert priority.loop_pauses == 1
    assert not priority._unfinished
