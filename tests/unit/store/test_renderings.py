"""Renderings of the store: one rebuild per generation however many readers wait, and
never an answer older than what was committed before the read."""

from __future__ import annotations

import threading
import time
from typing import Any

from moorage.security.roles import SYSTEM
from moorage.services import projects
from moorage.store.db import Database
from moorage.store.renderings import RenderCache, RowRenderings


def bump(db: Database) -> None:
    """A commit that changes a listed row."""
    with db.session() as s:
        projects.create(s, SYSTEM, slug=f"p{time.monotonic_ns()}")


def test_readers_of_a_stale_key_share_one_rebuild(db: Database) -> None:
    cache = RenderCache(db)
    started = threading.Event()
    builds: list[int] = []

    def build() -> bytes:
        builds.append(db.generation)
        started.set()
        time.sleep(0.3)  # a slow rebuild: every other reader arrives meanwhile
        return f"g{db.generation}".encode()

    bodies: list[bytes] = []
    readers = [threading.Thread(target=lambda: bodies.append(cache.get("k", build)))]
    readers[0].start()
    assert started.wait(5)
    readers += [
        threading.Thread(target=lambda: bodies.append(cache.get("k", build))) for _ in range(15)
    ]
    for r in readers[1:]:
        r.start()
    for r in readers:
        r.join(10)
    assert len(bodies) == 16
    assert len(builds) == 1  # not one per reader
    assert cache.rebuilds == 1
    assert cache.fresh("k") == bodies[0]


def test_a_read_after_a_commit_never_gets_an_older_rendering(db: Database) -> None:
    cache = RenderCache(db)
    assert cache.get("k", lambda: b"before") == b"before"
    assert cache.get("k", lambda: b"unused") == b"before"  # nothing changed: no rebuild
    bump(db)
    assert cache.fresh("k") is None
    assert cache.get("k", lambda: b"after") == b"after"
    assert cache.rebuilds == 2


def test_a_rendering_begun_before_a_commit_is_not_taken_after_it(db: Database) -> None:
    """A reader that arrives after a commit waits out a rebuild begun before it, then
    gets one of its own."""
    cache = RenderCache(db)
    in_build = threading.Event()
    go_on = threading.Event()

    def slow_old() -> bytes:
        in_build.set()
        go_on.wait(5)
        return b"old"

    first: list[bytes] = []
    t = threading.Thread(target=lambda: first.append(cache.get("k", slow_old)))
    t.start()
    assert in_build.wait(5)
    bump(db)  # committed while the first rebuild runs
    late: list[bytes] = []
    u = threading.Thread(target=lambda: late.append(cache.get("k", lambda: b"new")))
    u.start()
    time.sleep(0.1)
    go_on.set()
    t.join(5)
    u.join(5)
    assert first == [b"old"]
    assert late == [b"new"]


def test_a_row_renders_once_per_set_of_values() -> None:
    rows = RowRenderings(max_rows=3)
    seen: list[Any] = []

    def render(row: Any) -> bytes:
        seen.append(row)
        return repr(row).encode()

    a = ("wl_a", "running", {"image": "x", "ports": [1, 2]})
    same_a = ("wl_a", "running", {"ports": [1, 2], "image": "x"})  # key order is not a change
    b = ("wl_b", None, None)
    assert rows.each([a, b], render) == [repr(a).encode(), repr(b).encode()]
    assert rows.each([same_a, b], render) == [repr(a).encode(), repr(b).encode()]
    assert rows.rendered == 2
    changed = [("wl_a", "failed", a[2]), ("wl_a", "running", {"image": "y", "ports": [1, 2]})]
    rows.each(changed, render)
    assert rows.rendered == 4  # a status and a nested value are each a change
    # Equal in Python, not the same value: each renders on its own.
    for value in (True, 1, 1.0, '{"a":1}', {"a": 1}):
        rows.each([("wl_t", value, None)], render)
    assert [r[1] for r in seen[-5:]] == [True, 1, 1.0, '{"a":1}', {"a": 1}]
    rows.each([("wl_c", None, None)], render)  # past max_rows: starts again, still right
    assert rows.each([b], render) == [repr(b).encode()]
    assert len(rows._rows) <= 3
