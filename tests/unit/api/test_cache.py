"""The read caches: one rebuild per generation however many readers wait, never an
answer older than what was committed before the read, and credentials that follow
every change of users, tokens and sessions at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event

from moorage.api.cache import CredentialCache, RenderCache
from moorage.errors import Unauthenticated
from moorage.security.roles import SYSTEM
from moorage.services import projects, users
from moorage.store.db import Database

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a loop of its own thread: the suite's browser tests may leave an
    event loop running on this one, and asyncio.run refuses to nest."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    database.migrate()
    yield database
    database.dispose()


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


def statements(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_a_known_token_is_answered_without_the_store_until_something_changes(
    db: Database,
) -> None:
    with db.session() as s:
        ann = users.create(s, SYSTEM, username="ann", role="viewer", password="long-password")
        token, row = users.create_token(s, SYSTEM, ann)
    cache = CredentialCache(db)
    assert run(cache.token(token)).role == "viewer"  # records the token's first use,
    assert run(cache.token(token)).role == "viewer"  # which the next read sees
    seen = statements(db)
    for _ in range(5):
        assert run(cache.token(token)).username == "ann"
    assert seen == []
    with db.session() as s:  # a new role applies at once
        users.update(s, SYSTEM, ann.id, role="operator")
    assert run(cache.token(token)).role == "operator"
    with db.session() as s:  # so does a revoked token
        users.revoke_token(s, users.actor_for_token(s, token), row.id)
    with pytest.raises(Unauthenticated):
        run(cache.token(token))
    with pytest.raises(Unauthenticated):
        run(cache.token("mrg_never-issued"))


def test_a_session_cookie_follows_logout_and_expiry(db: Database) -> None:
    with db.session() as s:
        users.create(s, SYSTEM, username="bob", role="admin", password="long-password")
    with db.session() as s:
        cookie, csrf, _user = users.login(s, "bob", "long-password")
    cache = CredentialCache(db)
    actor, got = run(cache.cookie(cookie))
    assert (actor.username, got) == ("bob", csrf)
    with db.session() as s:
        users.logout(s, actor, cookie)
    with pytest.raises(Unauthenticated):
        run(cache.cookie(cookie))
