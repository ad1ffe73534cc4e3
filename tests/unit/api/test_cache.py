"""The credential cache: credentials that follow every change of users, tokens and
sessions at once; the webhook tokens, and ``vouching`` over both (which large bodies
count against the budget of senders the server knows, ``api/limits.BodyLimit``). The
renderings are tests/unit/store/test_renderings.py's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from moorage.api.cache import CredentialCache, HookTokens, raw_vouching, vouching
from moorage.errors import Unauthenticated
from moorage.security.roles import SYSTEM
from moorage.services import users
from moorage.store.db import Database
from moorage.store.tables import Trigger
from tests.loops import run
from tests.statements import statements


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


def _scope(method: str, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": method, "path": path, "headers": raw}


def test_a_webhook_token_is_known_from_its_commit_to_its_removal(db: Database) -> None:
    hooks = HookTokens(db)
    assert not run(hooks.known("tok-" + "a" * 40))
    with db.session() as s:
        s.add(Trigger(id="tr_1", kind="webhook", name="one", config={}, token="tok-" + "a" * 40))
        s.add(Trigger(id="tr_2", kind="schedule", name="two", config={}))  # no token
    assert run(hooks.known("tok-" + "a" * 40))  # the commit is seen at once
    seen = statements(db)
    assert run(hooks.known("tok-" + "a" * 40)) and not run(hooks.known("tok-b"))
    assert seen == [], "a known generation is answered without the store"
    with db.session() as s:
        s.delete(s.get(Trigger, "tr_1"))
    assert not run(hooks.known("tok-" + "a" * 40))


def test_a_firing_or_a_due_time_leaves_the_known_webhook_tokens_alone(db: Database) -> None:
    """Firing writes the trigger's ``last_fired_at`` and a timed trigger its
    ``next_run_at``: neither changes which tokens exist, so neither costs the next call a
    read of them all on a worker thread (each delivery did, behind the reads of a busy
    event loop: ``bench list_under_load``). A new token, a changed one and a removed
    trigger still apply at once."""
    with db.session() as s:
        s.add(Trigger(id="tr_1", kind="webhook", name="one", config={}, token="tok-one"))
        s.add(Trigger(id="tr_2", kind="schedule", name="two", config={}))
    hooks = HookTokens(db)
    assert run(hooks.known("tok-one"))
    at = datetime(2026, 12, 3, tzinfo=UTC)
    with db.session() as s:  # a firing, through the ORM
        s.get(Trigger, "tr_1").last_fired_at = at
    with db.session() as s:  # a due time, as the timed runner moves it (one statement)
        s.execute(update(Trigger).where(Trigger.id == "tr_2").values(next_run_at=at))
        s.execute(
            update(Trigger),
            [{"id": "tr_2", "next_run_at": at, "last_fired_at": at}],  # by primary key
        )
    seen = statements(db)
    assert run(hooks.known("tok-one")) and not run(hooks.known("tok-two"))
    assert seen == [], "nothing a call reads changed"
    for change in (
        lambda s: setattr(s.get(Trigger, "tr_2"), "token", "tok-two"),
        lambda s: s.execute(update(Trigger).where(Trigger.id == "tr_1").values(token="tok-1")),
        lambda s: s.execute(update(Trigger), [{"id": "tr_1", "token": "tok-uno"}]),
    ):
        with db.session() as s:
            change(s)
    assert run(hooks.known("tok-two")) and run(hooks.known("tok-uno"))
    assert not run(hooks.known("tok-one")) and not run(hooks.known("tok-1"))
    with db.session() as s:
        s.delete(s.get(Trigger, "tr_2"))
    assert not run(hooks.known("tok-two"))


def _senders(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Requests from senders the store knows, and from made-up ones."""
    with db.session() as s:
        users.create(s, SYSTEM, username="cy", role="viewer", password="long-password")
    with db.session() as s:
        user = users.get_by_name(s, "cy")
        token, _row = users.create_token(s, SYSTEM, user)
        cookie, _csrf, _user = users.login(s, "cy", "long-password")
        s.add(Trigger(id="tr_3", kind="webhook", name="three", config={}, token="hook-tok"))
    known = [
        _scope("POST", "/hooks/hook-tok"),
        _scope("POST", "/api/projects", {"Authorization": f"Bearer {token}"}),
        _scope("PUT", "/api/x", {"authorization": f"bearer  {token} "}),
        _scope("POST", "/api/projects", {"Cookie": f"moorage_session={cookie}"}),
    ]
    unknown = [
        _scope("POST", "/hooks/other-tok"),
        _scope("POST", "/hooks/hook-tok/more"),
        _scope("PUT", "/hooks/hook-tok"),  # not a delivery: its credentials decide
        _scope("POST", "/hooks/other-tok", {"Authorization": f"Bearer {token}"}),
        _scope("POST", "/api/projects", {"Authorization": "Bearer mrg_made-up"}),
        _scope("POST", "/api/projects", {"Authorization": f"Basic {token}"}),
        _scope("POST", "/api/projects", {"Authorization": "Bearer "}),
        _scope("POST", "/api/projects", {"Cookie": "moorage_session=made-up"}),
        _scope("POST", "/api/projects", {"Cookie": "moorage_session=; x=1"}),
        _scope(  # a made-up scheme does not fall back to a good cookie
            "POST",
            "/api/projects",
            {"Authorization": "Digest x", "Cookie": f"moorage_session={cookie}"},
        ),
        _scope("POST", "/api/projects"),
    ]
    return known, unknown


def test_vouching_knows_a_webhook_a_token_or_a_session_and_nothing_else(db: Database) -> None:
    known, unknown = _senders(db)
    vouch = vouching(CredentialCache(db), HookTokens(db))
    assert [run(vouch(s)) for s in known] == [True] * len(known)
    assert [run(vouch(s)) for s in unknown] == [False] * len(unknown)


def _raw(scope: dict[str, Any]) -> bytes:
    head = f"{scope['method']} {scope['path']} HTTP/1.1\r\nHost: x\r\n".encode()
    return head + b"".join(k + b": " + v + b"\r\n" for k, v in scope["headers"]) + b"\r\n"


def test_raw_vouching_says_no_to_what_vouching_refuses_without_any_io(db: Database) -> None:
    """``raw_vouching`` (``GuardedH11``'s check on a held connection's first bytes)
    answers from what the caches hold, never the store: yes to every request ``vouching``
    accepts, no to made-up webhook URLs, tokens and cookies; it may say yes to more
    (a good cookie under a made-up scheme: ``Pace`` then refuses it)."""
    credentials, hooks = CredentialCache(db), HookTokens(db)
    known, unknown = _senders(db)
    vouch = vouching(credentials, hooks)
    for scope in known:
        assert run(vouch(scope))  # these caches have looked once
    raw = raw_vouching(credentials, hooks)
    seen = statements(db)
    assert [raw(_raw(s)) for s in known] == [True] * len(known)
    lenient = [s for s in unknown if dict(s["headers"]).get(b"authorization") == b"Digest x"]
    assert [raw(_raw(s)) for s in unknown if s not in lenient] == [False] * (
        len(unknown) - len(lenient)
    )
    assert raw(b"GET /api/x?authorization:x HTTP/1.1\r\n\r\n") is False
    assert raw(b"\xff\xfe garbage") is False
    assert seen == [], "no statement: it runs on the event loop"
    with db.session() as s:  # hooks changed: their digests are stale, so it may be one
        s.add(Trigger(id="tr_9", kind="webhook", name="nine", config={}, token="new-tok"))
    assert raw(b"POST /hooks/other-tok HTTP/1.1\r\n\r\n") is True


def test_prime_reads_the_stored_digests_once_so_raw_vouching_knows_them(db: Database) -> None:
    """``CredentialCache.prime`` (run at start-up): before it, a valid token was unknown
    to ``raw_vouching`` until some unknown credential made the cache read (attacker pass
    H: right after a restart a valid token from an address in debt was held)."""
    with db.session() as s:
        dee = users.create(s, SYSTEM, username="dee", role="viewer", password="long-password")
        token, _row = users.create_token(s, SYSTEM, dee)
    credentials = CredentialCache(db)
    raw = raw_vouching(credentials, HookTokens(db))
    head = f"GET /api/workloads HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    assert raw(head) is False
    run(credentials.prime())
    assert raw(head) is True


def test_vouching_asks_once_per_request(db: Database) -> None:
    """``Pace`` and ``BodyLimit`` both ask about a large body's request: the second finds
    the first's answer in the scope, and a made-up token costs one read of the stored
    digests, not two."""
    vouch = vouching(CredentialCache(db), HookTokens(db))
    scope = _scope("POST", "/api/projects", {"Authorization": "Bearer mrg_made-up"})
    seen = statements(db)
    assert run(vouch(scope)) is False
    reads = len(seen)
    assert reads > 0
    assert run(vouch(scope)) is False
    assert len(seen) == reads
    assert run(vouch(_scope("POST", "/api/projects", {"Authorization": "Bearer mrg_x"}))) is False
    assert len(seen) > reads  # another request is asked about on its own


def _signed_in(db: Database, username: str, role: str) -> tuple[str, Any, str, CredentialCache]:
    """A new user's API token, its row and a session cookie, and a primed cache."""
    with db.session() as s:
        user = users.create(s, SYSTEM, username=username, role=role, password="long-password")
        token, row = users.create_token(s, SYSTEM, user)
    with db.session() as s:
        cookie, _csrf, _user = users.login(s, username, "long-password")
    credentials = CredentialCache(db)
    run(credentials.prime())
    return token, row, cookie, credentials


def test_a_revoked_token_or_ended_session_is_forgotten_after_one_read(db: Database) -> None:
    """A credential the store once held and no longer does (a revoked token, a session
    logged out) was still among the cached digests: ``raw_vouching`` said yes to it (a
    flood naming it was never held) and each request read its row on a worker thread,
    one read each, as a made-up token did before the digests (attacker pass I). After
    one refusal it is made-up: no read of its own, and held."""
    token, row, cookie, credentials = _signed_in(db, "eve", "operator")
    assert run(credentials.token(token)).username == "eve"
    actor, _ = run(credentials.cookie(cookie))
    with db.session() as s:
        users.revoke_token(s, actor, row.id)
        users.logout(s, actor, cookie)
    raw = raw_vouching(credentials, HookTokens(db))
    by_token = f"GET /api/workloads HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    by_cookie = f"GET /api/workloads HTTP/1.1\r\nCookie: moorage_session={cookie}\r\n\r\n"
    for refused in (lambda: credentials.token(token), lambda: credentials.cookie(cookie)):
        with pytest.raises(Unauthenticated):
            run(refused())
    assert raw(by_token) is False
    assert raw(by_cookie.encode()) is False
    seen = statements(db)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            run(credentials.token(token))
        with pytest.raises(Unauthenticated):
            run(credentials.cookie(cookie))
    rows = [q for q in seen if "JOIN users" in q]
    assert rows == [], "no read of the gone row for each request"


def test_raw_vouching_reads_the_fields_vouching_reads_and_digests_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``vouching`` (Starlette) reads the first ``Authorization`` field, else the last
    session cookie of the ``Cookie`` fields: ``raw_vouching`` digested every field and
    every cookie, 900 digests for a 16 KiB ``Cookie`` of ``moorage_session=a;`` on the
    event loop per judged head, and said yes to a good token in a second field, which
    ``Pace`` refuses: a flood naming it was never held (attacker pass I)."""
    import moorage.api.cache as cache_module

    token, _row, cookie, credentials = _signed_in(db, "fay", "viewer")
    raw = raw_vouching(credentials, HookTokens(db))
    vouch = vouching(credentials, HookTokens(db))
    digests: list[str] = []
    digest = cache_module.sec.digest
    monkeypatch.setattr(cache_module.sec, "digest", lambda t: digests.append(t) or digest(t))
    many = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"moorage_session=a;" * 900 + b"\r\n\r\n"
    assert raw(many) is False
    assert len(digests) <= 1
    cases = {
        "second_token": [
            ("Authorization", "Bearer mrg_made-up"),
            ("Authorization", f"Bearer {token}"),
        ],
        "first_token": [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer mrg_x")],
        "overridden_cookie": [("Cookie", f"moorage_session={cookie}; moorage_session=made-up")],
        "last_cookie": [("Cookie", f"moorage_session=made-up; moorage_session={cookie}")],
        "second_cookie_field": [("Cookie", "a=b"), ("Cookie", f"moorage_session={cookie}")],
        "cookie_under_a_scheme": [
            ("Authorization", "Digest x"),
            ("Cookie", f"moorage_session={cookie}"),
        ],
    }
    for name, fields in cases.items():
        head = b"GET /api/workloads HTTP/1.1\r\nHost: x\r\n" + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in fields
        )
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/workloads",
            "headers": [(k.lower().encode(), v.encode()) for k, v in fields],
        }
        assert raw(head + b"\r\n") is run(vouch(scope)), name
