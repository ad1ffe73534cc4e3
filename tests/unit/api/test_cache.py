"""The credential cache: credentials that follow every change of users, tokens and
sessions at once (the renderings are tests/unit/store/test_renderings.py's)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from sqlalchemy import event

from moorage.api.cache import CredentialCache
from moorage.errors import Unauthenticated
from moorage.security.roles import SYSTEM
from moorage.services import users
from moorage.store.db import Database

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a loop of its own thread: the suite's browser tests may leave an
    event loop running on this one, and asyncio.run refuses to nest."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


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
