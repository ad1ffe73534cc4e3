"""Users, API tokens and web sessions (services/users.py) on the real store: the last
admin stays one, nobody deletes themselves, a token or session is kept only as a digest,
a wrong password opens nothing, a user's tokens and sessions are bounded (in parallel
too) and expired sessions go without being presented; each refusal writes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound, Unauthenticated
from moorage.security import secrets as sec
from moorage.security.roles import Actor
from moorage.services import users
from moorage.store.db import Database
from moorage.store.tables import ApiToken, User, WebSession, utcnow
from tests.unit.services.test_workloads import ADA, audit_rows, db, migrated, pg_url

__all__ = ["db", "migrated", "pg_url"]  # fixtures of test_workloads

PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its lowest cost: the rules, not the hash's price, are under test."""
    monkeypatch.setattr(sec, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def create(db: Database, username: str = "bob", role: str = "operator") -> str:
    with db.session() as s:
        return users.create(s, ADA, username=username, role=role, password=PASSWORD).id


def actor(db: Database, user_id: str) -> Actor:
    with db.session() as s:
        u = users.get(s, user_id)
        return Actor(user_id=u.id, username=u.username, role=u.role, via="session")


def count(db: Database, table: type[User] | type[ApiToken] | type[WebSession]) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def refused_create(
    db: Database,
    error: type[MoorageError],
    code: str,
    *,
    username: str = "bob",
    role: str = "operator",
    password: str = PASSWORD,
) -> None:
    before, audited = count(db, User), audit_rows(db)
    with pytest.raises(error) as caught, db.session() as s:
        users.create(s, ADA, username=username, role=role, password=password)
    assert caught.value.code == code
    assert count(db, User) == before
    assert audit_rows(db) == audited


def test_create_stores_a_hash_and_writes_one_audit_row(db: Database) -> None:
    user_id = create(db)
    with db.session() as s:
        row = users.get(s, user_id)
        assert (row.username, row.role) == ("bob", "operator")
        assert PASSWORD not in row.password_hash
        assert sec.verify_password(row.password_hash, PASSWORD)
        assert users.get_by_name(s, "bob").id == user_id
        assert users.count(s) == 1
    assert audit_rows(db) == [("ada", "user.create", "bob", {"via": "token", "role": "operator"})]


@pytest.mark.parametrize(
    "username", ["", "Bob", ".bob", "-bob", "bob smith", "b" * 65, "böb", "bob\n", "bob@x"]
)
def test_create_refuses_a_bad_username(db: Database, username: str) -> None:
    refused_create(db, InvalidInput, "invalid_username", username=username)


@pytest.mark.parametrize("username", ["b", "0", "b" * 64, "bob.smith_2-x"])
def test_create_takes_usernames_at_the_limits(db: Database, username: str) -> None:
    create(db, username)
    with db.session() as s:
        assert users.get_by_name(s, username).username == username


def test_create_refuses_a_bad_role_a_short_password_and_a_duplicate(db: Database) -> None:
    refused_create(db, InvalidInput, "invalid_role", role="root")
    refused_create(db, InvalidInput, "invalid_role", role="Admin")
    short = "x" * (sec.MIN_PASSWORD_CHARS - 1)
    refused_create(db, InvalidInput, "weak_password", password=short)
    create(db)
    refused_create(db, Conflict, "duplicate")
    with db.session() as s:
        users.create(s, ADA, username="eve", role="viewer", password="x" * sec.MIN_PASSWORD_CHARS)
    assert count(db, User) == 2


def test_list_all_is_ordered_by_username(db: Database) -> None:
    for name in ("zed", "amy", "max"):
        create(db, name)
    with db.session() as s:
        assert [u.username for u in users.list_all(s)] == ["amy", "max", "zed"]


def test_missing_users_are_not_found(db: Database) -> None:
    with db.session() as s:
        for call in (
            lambda: users.get(s, "us_missing"),
            lambda: users.get_by_name(s, "nobody"),
            lambda: users.update(s, ADA, "us_missing", role="viewer"),
            lambda: users.delete(s, ADA, "us_missing"),
        ):
            with pytest.raises(NotFound):
                call()
    assert audit_rows(db) == []


def test_update_role_and_password_ends_the_users_sessions(db: Database) -> None:
    bob = create(db)
    with db.session() as s:
        users.login(s, "bob", PASSWORD)
    other = create(db, "amy")
    with db.session() as s:
        users.login(s, "amy", PASSWORD)
    audited = len(audit_rows(db))
    with db.session() as s:
        users.update(s, ADA, bob, role="viewer", password="a new password")
    with db.session() as s:
        assert users.get(s, bob).role == "viewer"
        assert sec.verify_password(users.get(s, bob).password_hash, "a new password")
        assert list(s.scalars(select(WebSession.user_id))) == [other]
    rows = audit_rows(db)
    assert len(rows) == audited + 1
    assert rows[-1] == (
        "ada",
        "user.update",
        "bob",
        {"via": "token", "role": "viewer", "password_changed": True},
    )
    assert all("a new password" not in repr(r) for r in rows)


def test_update_refusals_change_nothing(db: Database) -> None:
    bob = create(db)
    with db.session() as s:
        before = users.get(s, bob).password_hash
    for fields, code in (
        ({"role": "root"}, "invalid_role"),
        ({"role": "admin", "password": "short"}, "weak_password"),
    ):
        with pytest.raises(InvalidInput) as caught, db.session() as s:
            users.update(s, ADA, bob, **fields)
        assert caught.value.code == code
    with db.session() as s:
        row = users.get(s, bob)
        assert (row.role, row.password_hash) == ("operator", before)
    assert len(audit_rows(db)) == 1


def test_the_last_admin_keeps_the_role(db: Database) -> None:
    root = create(db, "root", "admin")
    with pytest.raises(Conflict) as caught, db.session() as s:
        users.update(s, ADA, root, role="operator")
    assert caught.value.code == "last_admin"
    with pytest.raises(Conflict) as caught, db.session() as s:
        users.delete(s, ADA, root)
    assert caught.value.code == "last_admin"
    with db.session() as s:
        assert users.get(s, root).role == "admin"
        users.update(s, ADA, root, role="admin")  # no change: no refusal
    second = create(db, "second", "admin")
    with db.session() as s:
        users.update(s, ADA, root, role="viewer")
    with pytest.raises(Conflict) as caught, db.session() as s:
        users.delete(s, ADA, second)
    assert caught.value.code == "last_admin"


def test_nobody_deletes_their_own_account(db: Database) -> None:
    root = create(db, "root", "admin")
    create(db, "other", "admin")
    audited = audit_rows(db)
    with pytest.raises(Conflict) as caught, db.session() as s:
        users.delete(s, actor(db, root), root)
    assert caught.value.code == "own_account"
    assert count(db, User) == 2
    assert audit_rows(db) == audited


def test_delete_takes_the_users_tokens_and_sessions(db: Database) -> None:
    bob, amy = create(db), create(db, "amy")
    with db.session() as s:
        users.create_token(s, ADA, users.get(s, bob))
        users.create_token(s, ADA, users.get(s, amy))
        users.login(s, "bob", PASSWORD)
    with db.session() as s:
        users.delete(s, ADA, bob)
    with db.session() as s:
        assert [u.username for u in users.list_all(s)] == ["amy"]
        assert list(s.scalars(select(ApiToken.user_id))) == [amy]
        assert count(db, WebSession) == 0
    assert audit_rows(db)[-1] == ("ada", "user.delete", "bob", {"via": "token"})


def test_a_token_is_shown_once_and_kept_as_a_digest(db: Database) -> None:
    bob = create(db)
    with db.session() as s:
        token, row = users.create_token(s, ADA, users.get(s, bob), name="ci")
        token_id = row.id
    with db.session() as s:
        stored = s.get_one(ApiToken, token_id)
        assert stored.token_hash == sec.digest(token) != token
        assert stored.prefix == token[:8]
        found = users.actor_for_token(s, token)
        assert (found.user_id, found.username, found.role, found.via) == (
            bob,
            "bob",
            "operator",
            "token",
        )
    assert audit_rows(db)[-1] == ("ada", "token.create", "bob", {"via": "token", "name": "ci"})
    assert all(token not in repr(r) for r in audit_rows(db))
    with pytest.raises(Unauthenticated) as caught, db.session() as s:
        users.actor_for_token(s, token + "x")
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize("name", ["", "n" * 65])
def test_a_token_name_out_of_bounds_is_refused(db: Database, name: str) -> None:
    bob = create(db)
    with pytest.raises(InvalidInput) as caught, db.session() as s:
        users.create_token(s, ADA, users.get(s, bob), name=name)
    assert caught.value.code == "invalid_token_name"
    assert count(db, ApiToken) == 0
    assert len(audit_rows(db)) == 1


def test_a_tokens_last_use_is_written_at_most_once_a_minute(db: Database) -> None:
    bob = create(db)
    with db.session() as s:
        token, row = users.create_token(s, ADA, users.get(s, bob))
        token_id = row.id
    with db.session() as s:
        users.actor_for_token(s, token)
    with db.session() as s:
        first = s.get_one(ApiToken, token_id).last_used_at
        assert first is not None
        users.actor_for_token(s, token)
    with db.session() as s:
        assert s.get_one(ApiToken, token_id).last_used_at == first
        s.get_one(ApiToken, token_id).last_used_at = utcnow() - timedelta(minutes=2)
    with db.session() as s:
        users.actor_for_token(s, token)
    with db.session() as s:
        again = s.get_one(ApiToken, token_id).last_used_at
        assert again is not None and again > first


def test_revoke_only_ones_own_token(db: Database) -> None:
    bob, amy = create(db), create(db, "amy")
    with db.session() as s:
        _, row = users.create_token(s, ADA, users.get(s, bob))
        token_id = row.id
    audited = len(audit_rows(db))
    with pytest.raises(NotFound), db.session() as s:
        users.revoke_token(s, actor(db, amy), token_id)
    with pytest.raises(NotFound), db.session() as s:
        users.revoke_token(s, actor(db, bob), "tk_missing")
    assert count(db, ApiToken) == 1
    assert len(audit_rows(db)) == audited
    with db.session() as s:
        users.revoke_token(s, actor(db, bob), token_id)
    assert count(db, ApiToken) == 0
    assert audit_rows(db)[-1] == (
        "bob",
        "token.revoke",
        "bob",
        {"via": "session", "token": token_id},
    )
    with db.session() as s:
        assert users.tokens_of(s, bob) == []


@pytest.mark.parametrize(
    ("username", "password"),
    [("bob", "wrong password"), ("nobody", PASSWORD), ("BOB", PASSWORD), ("bob", "")],
)
def test_a_wrong_login_opens_nothing(db: Database, username: str, password: str) -> None:
    create(db)
    with pytest.raises(Unauthenticated) as caught, db.session() as s:
        users.login(s, username, password)
    assert caught.value.code == "bad_credentials"
    assert count(db, WebSession) == 0
    assert len(audit_rows(db)) == 1


def test_login_opens_a_session_the_cookie_finds(db: Database) -> None:
    bob = create(db)
    with db.session() as s:
        token, csrf, user = users.login(s, "bob", PASSWORD)
    assert user.id == bob and token != csrf
    with db.session() as s:
        row = s.scalars(select(WebSession)).one()
        assert row.token_hash == sec.digest(token)
        found, found_csrf = users.session_for_cookie(s, token)
        assert (found.user_id, found.via, found_csrf) == (bob, "session", csrf)
    assert audit_rows(db)[-1] == ("bob", "session.create", "bob", {"via": "session"})
    with pytest.raises(Unauthenticated) as caught, db.session() as s:
        users.session_for_cookie(s, csrf)
    assert caught.value.code == "session_expired"


def test_an_expired_session_is_removed_when_used(db: Database) -> None:
    create(db)
    with db.session() as s:
        token, _, _ = users.login(s, "bob", PASSWORD)
    with db.session() as s:
        s.scalars(select(WebSession)).one().expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthenticated) as caught, db.session() as s:
        users.session_for_cookie(s, token)
    assert caught.value.code == "session_expired"
    assert count(db, WebSession) == 0


def test_logout_ends_the_session_once(db: Database) -> None:
    bob = create(db)
    with db.session() as s:
        token, _, _ = users.login(s, "bob", PASSWORD)
    audited = len(audit_rows(db))
    with db.session() as s:
        users.logout(s, actor(db, bob), token)
    with db.session() as s:
        users.logout(s, actor(db, bob), token)  # already gone: nothing to record
    assert count(db, WebSession) == 0
    rows = audit_rows(db)
    assert len(rows) == audited + 1
    assert rows[-1] == ("bob", "session.delete", "bob", {"via": "session"})


# --- bounds: tokens and sessions per user ----------------------------------------------------


def token_ids(db: Database, user_id: str) -> list[str]:
    with db.session() as s:
        return [t.id for t in users.tokens_of(s, user_id)]


def new_token(db: Database, who: Actor, name: str = "t") -> str:
    with db.session() as s:
        return users.create_token(s, who, users.get(s, who.user_id), name)[1].id


def test_a_user_holds_at_most_max_tokens(db: Database) -> None:
    bob, amy = create(db), create(db, "amy", "viewer")
    as_bob, as_amy = actor(db, bob), actor(db, amy)
    made = [new_token(db, as_bob, f"t{i}") for i in range(users.MAX_TOKENS)]
    assert token_ids(db, bob) == made
    audited = audit_rows(db)
    with pytest.raises(Conflict) as caught:
        new_token(db, as_bob, "one-too-many")
    assert caught.value.code == "token_limit"
    assert "revoke one" in caught.value.message
    assert caught.value.details == {"limit": users.MAX_TOKENS}
    assert token_ids(db, bob) == made
    assert audit_rows(db) == audited
    # Another user is not held back by bob's tokens.
    theirs = new_token(db, as_amy)
    assert token_ids(db, amy) == [theirs]
    # A revoked token makes room for exactly one more.
    with db.session() as s:
        users.revoke_token(s, as_bob, made[0])
    again = new_token(db, as_bob, "again")
    assert token_ids(db, bob) == [*made[1:], again]
    with pytest.raises(Conflict), db.session() as s:
        users.create_token(s, as_bob, users.get(s, bob))
    assert len(token_ids(db, bob)) == users.MAX_TOKENS


def test_the_offline_cli_is_not_held_to_the_token_bound(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``moorage token create`` is the way back in for someone with the host."""
    monkeypatch.setattr(users, "MAX_TOKENS", 2)
    bob = create(db)
    cli = Actor(user_id="", username="cli", role="admin", via="cli")
    for _ in range(3):
        with db.session() as s:
            users.create_token(s, cli, users.get(s, bob))
    assert len(token_ids(db, bob)) == 3
    with pytest.raises(Conflict), db.session() as s:
        users.create_token(s, actor(db, bob), users.get(s, bob))
    assert len(token_ids(db, bob)) == 3


def test_parallel_token_requests_do_not_pass_the_bound(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users, "MAX_TOKENS", 5)
    bob = create(db)
    as_bob = actor(db, bob)

    def one(i: int) -> str:
        try:
            new_token(db, as_bob, f"p{i}")
        except Conflict as exc:
            return exc.code
        return "created"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, range(16)))
    assert sorted(outcomes) == ["created"] * 5 + ["token_limit"] * 11
    assert len(token_ids(db, bob)) == 5


def session_ids(db: Database, user_id: str) -> set[str]:
    with db.session() as s:
        return set(s.scalars(select(WebSession.id).where(WebSession.user_id == user_id)))


def authenticates(db: Database, cookie: str) -> bool:
    try:
        with db.session() as s:
            users.session_for_cookie(s, cookie)
    except Unauthenticated as exc:
        assert exc.code == "session_expired"
        return False
    return True


def test_a_login_past_the_bound_ends_the_users_oldest_session(db: Database) -> None:
    bob, amy = create(db), create(db, "amy")
    with db.session() as s:
        amys, _, _ = users.login(s, "amy", PASSWORD)
    cookies = []
    for _ in range(users.MAX_SESSIONS):
        with db.session() as s:
            cookies.append(users.login(s, "bob", PASSWORD)[0])
    assert len(session_ids(db, bob)) == users.MAX_SESSIONS
    assert audit_rows(db)[-1] == ("bob", "session.create", "bob", {"via": "session"})
    with db.session() as s:
        newest, _, _ = users.login(s, "bob", PASSWORD)
    assert len(session_ids(db, bob)) == users.MAX_SESSIONS
    assert audit_rows(db)[-1] == (
        "bob",
        "session.create",
        "bob",
        {"via": "session", "ended_sessions": 1},
    )
    assert not authenticates(db, cookies[0])
    assert all(authenticates(db, c) for c in [*cookies[1:], newest])
    assert authenticates(db, amys)  # another user's sessions are not bob's to end
    assert len(session_ids(db, amy)) == 1


def test_parallel_logins_keep_the_bound(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "MAX_SESSIONS", 3)
    bob = create(db)

    def one(_: int) -> str:
        with db.session() as s:
            return users.login(s, "bob", PASSWORD)[0]

    with ThreadPoolExecutor(8) as pool:
        cookies = list(pool.map(one, range(12)))
    assert len(session_ids(db, bob)) == 3
    assert sum(authenticates(db, c) for c in cookies) == 3


def test_a_login_removes_expired_sessions_nobody_presents(db: Database) -> None:
    bob, amy = create(db), create(db, "amy")
    with db.session() as s:
        users.login(s, "bob", PASSWORD)
        stale, _, _ = users.login(s, "bob", PASSWORD)
        users.login(s, "amy", PASSWORD)
    with db.session() as s:
        row = s.scalars(select(WebSession).where(WebSession.token_hash == sec.digest(stale))).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        expired = row.id
    live = session_ids(db, bob) - {expired}
    with db.session() as s:
        users.login(s, "amy", PASSWORD)  # someone else's login: bob's cookie is never sent
    assert session_ids(db, bob) == live
    assert len(session_ids(db, amy)) == 2
    # A failed login writes nothing, a sweep neither.
    with db.session() as s:
        s.get_one(WebSession, next(iter(live))).expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthenticated), db.session() as s:
        users.login(s, "amy", "wrong password")
    assert session_ids(db, bob) == live
