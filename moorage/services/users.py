"""Users, API tokens and web sessions.

Credentials are bounded per user, so no one grows the store without end by asking
(a security review found 300 tokens made in 3 s; docs/CODEMAPS/auth.md):

- at most ``MAX_TOKENS`` API tokens (they never expire): the next is refused with 409
  ``token_limit`` until one is revoked. The offline ``moorage token create`` is the way
  back in for someone with the host, and is not held to it;
- at most ``MAX_SESSIONS`` web sessions: a login past it ends the user's oldest ones;
  and every login removes every user's expired sessions, so an ended session that is
  never presented again does not stay behind.

Both counts are taken under a lock on the user's row (PostgreSQL; SQLite has one writer),
after the new row is written, so parallel requests cannot all slip under the bound.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from moorage.names import new_id
from moorage.security import secrets as sec
from moorage.security.roles import ROLES, Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.services.guard import flush_or_conflict
from moorage.store.tables import ApiToken, User, WebSession, utcnow

SESSION_LIFETIME = timedelta(hours=12)
MAX_TOKENS = 50
"""API tokens one user may hold at once."""
MAX_SESSIONS = 20
"""Web sessions one user keeps; a login past it ends the oldest."""
LAST_USED_EVERY = timedelta(minutes=1)
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


def _check_username(username: str) -> None:
    import re

    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInput(
            f"username {username!r} must be 1-64 lower-case letters, digits or '._-'",
            code="invalid_username",
        )


def get_by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def list_all(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def create(session: Session, actor: Actor, *, username: str, role: str, password: str) -> User:
    _check_username(username)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists", code="duplicate")
    user = User(
        id=new_id("us"), username=username, role=role, password_hash=sec.hash_password(password)
    )
    session.add(user)
    flush_or_conflict(session, f"user {username!r} already exists")
    audit.record(session, actor, AuditAction.USER_CREATE, "user", username, {"role": role})
    return user


def _check_password(password: str) -> None:
    if len(password) < sec.MIN_PASSWORD_CHARS:
        raise InvalidInput(
            f"password must be at least {sec.MIN_PASSWORD_CHARS} characters",
            code="weak_password",
        )


def get(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    return user


def _other_admins(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.id != user.id)
        )
        or 0
    )


def update(
    session: Session,
    actor: Actor,
    user_id: str,
    *,
    role: str | None = None,
    password: str | None = None,
) -> User:
    """Change a user's role or password; the last admin keeps the admin role."""
    user = get(session, user_id)
    changed: dict[str, object] = {}
    if role is not None and role != user.role:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
        if user.role == "admin" and _other_admins(session, user) == 0:
            raise Conflict(
                f"{user.username!r} is the last admin; make another admin first", code="last_admin"
            )
        changed["role"] = role
        user.role = role
    if password is not None:
        _check_password(password)
        user.password_hash = sec.hash_password(password)
        changed["password_changed"] = True
        # A new password ends every web session of that user.
        session.execute(sql_delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(session, actor, AuditAction.USER_UPDATE, "user", user.username, changed)
    return user


def delete(session: Session, actor: Actor, user_id: str) -> None:
    """Remove a user with their tokens and sessions; never yourself, never the last admin."""
    user = get(session, user_id)
    if user.id == actor.user_id:
        raise Conflict("you cannot delete your own account", code="own_account")
    if user.role == "admin" and _other_admins(session, user) == 0:
        raise Conflict(f"{user.username!r} is the last admin", code="last_admin")
    session.execute(sql_delete(ApiToken).where(ApiToken.user_id == user.id))
    session.execute(sql_delete(WebSession).where(WebSession.user_id == user.id))
    session.delete(user)
    audit.record(session, actor, AuditAction.USER_DELETE, "user", user.username)


def create_token(
    session: Session, actor: Actor, user: User, name: str = "api"
) -> tuple[str, ApiToken]:
    """Create an API token for ``user``; return it (shown once) and its row (a digest).

    Raises ``InvalidInput`` ``invalid_token_name``, and ``Conflict`` ``token_limit`` when
    ``user`` already holds ``MAX_TOKENS`` (except for the offline CLI, ``via == "cli"``).
    """
    if not 1 <= len(name) <= 64:
        raise InvalidInput("token name must be 1-64 characters", code="invalid_token_name")
    _lock(session, user)
    token = sec.new_token()
    row = ApiToken(
        id=new_id("tk"),
        user_id=user.id,
        name=name,
        token_hash=sec.digest(token),
        prefix=token[:8],
    )
    session.add(row)
    session.flush()
    # Counted with the new row written: a parallel creation waits for this one's commit
    # (the user's row lock, or SQLite's one writer) and then counts it too.
    held = session.scalar(
        select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id)
    )
    if actor.via != "cli" and (held or 0) > MAX_TOKENS:
        raise Conflict(
            f"{user.username!r} already holds {MAX_TOKENS} API tokens, the most one user "
            "may: revoke one that is no longer used (DELETE /api/tokens/{id}), then try again",
            code="token_limit",
            details={"limit": MAX_TOKENS},
        )
    audit.record(session, actor, AuditAction.TOKEN_CREATE, "user", user.username, {"name": name})
    return token, row


def _lock(session: Session, user: User) -> None:
    """Hold ``user``'s row until the commit, so that counts of their tokens or sessions
    and the writes that follow are one step (PostgreSQL; SQLite omits ``FOR UPDATE`` and
    has one writer at a time anyway)."""
    session.execute(select(User.id).where(User.id == user.id).with_for_update())


def actor_for_token(session: Session, token: str) -> Actor:
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == sec.digest(token))
    ).first()
    if row is None:
        raise Unauthenticated("invalid API token", code="invalid_token")
    api_token, user = row
    now = utcnow()
    # At most one write a minute per token: reads must not each cost a commit.
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_EVERY:
        api_token.last_used_at = now
    return Actor(user_id=user.id, username=user.username, role=user.role, via="token")


def credential_digests(session: Session) -> tuple[list[str], list[str]]:
    """The digests (``secrets.digest``) of every API token and of every web session in
    the store: what ``api/cache`` checks an unknown credential against before it reads
    that credential's row."""
    tokens = list(session.scalars(select(ApiToken.token_hash)))
    sessions = list(session.scalars(select(WebSession.token_hash)))
    return tokens, sessions


def login(session: Session, username: str, password: str) -> tuple[str, str, User]:
    """Check a password and open a web session; return (session token, CSRF token, user).

    Raises ``Unauthenticated`` ``bad_credentials`` (and writes nothing). A success removes
    every expired session (anyone's) and keeps the user's newest ``MAX_SESSIONS``, this
    one among them: the others end, and the audit row says how many."""
    user = session.scalar(select(User).where(User.username == username))
    # An unknown name costs the same hash as a known one: the answer time tells nothing.
    stored = sec.dummy_hash() if user is None else user.password_hash
    if not sec.verify_password(stored, password) or user is None:
        raise Unauthenticated("wrong username or password", code="bad_credentials")
    _lock(session, user)
    now = utcnow()
    # Everyone's ended sessions, but none another login is removing meanwhile: two
    # sweeps never wait on each other (SQLite has no row locks to skip, nor the need).
    expired = (
        select(WebSession.id).where(WebSession.expires_at <= now).with_for_update(skip_locked=True)
    )
    session.execute(
        sql_delete(WebSession).where(WebSession.id.in_(expired)),
        execution_options={"synchronize_session": False},
    )
    token, csrf = sec.new_secret(), sec.new_secret()
    row = WebSession(
        id=new_id("se"),
        user_id=user.id,
        token_hash=sec.digest(token),
        csrf_token=csrf,
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    ended = _older_sessions(session, user, row)
    if ended:
        session.execute(sql_delete(WebSession).where(WebSession.id.in_(ended)))
    audit.record(
        session,
        Actor(user_id=user.id, username=user.username, role=user.role, via="session"),
        AuditAction.SESSION_CREATE,
        "user",
        user.username,
        {"ended_sessions": len(ended)} if ended else None,
    )
    return token, csrf, user


def _older_sessions(session: Session, user: User, newest: WebSession) -> list[str]:
    """The ids of ``user``'s sessions past the ``MAX_SESSIONS`` they keep: ``newest``
    always stays, and then the most recently opened others."""
    others = session.scalars(
        select(WebSession.id)
        .where(WebSession.user_id == user.id, WebSession.id != newest.id)
        .order_by(WebSession.created_at.desc(), WebSession.id.desc())
    ).all()
    return list(others[MAX_SESSIONS - 1 :])


def session_for_cookie(session: Session, token: str) -> tuple[Actor, str]:
    """Return the actor behind a session cookie and the session's CSRF token."""
    actor, csrf, _expires = web_session_for_cookie(session, token)
    return actor, csrf


def web_session_for_cookie(session: Session, token: str) -> tuple[Actor, str, datetime]:
    """The actor behind a session cookie, the session's CSRF token and when it ends."""
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == sec.digest(token))
    ).first()
    if row is None:
        raise Unauthenticated("your session has ended; log in again", code="session_expired")
    web_session, user = row
    if web_session.expires_at <= utcnow():
        session.delete(web_session)
        session.commit()  # the request fails, but the expired session is gone for good
        raise Unauthenticated("your session has ended; log in again", code="session_expired")
    actor = Actor(user_id=user.id, username=user.username, role=user.role, via="session")
    return actor, web_session.csrf_token, web_session.expires_at


def logout(session: Session, actor: Actor, token: str) -> None:
    row = session.scalar(select(WebSession).where(WebSession.token_hash == sec.digest(token)))
    if row is not None:
        session.delete(row)
        audit.record(session, actor, AuditAction.SESSION_DELETE, "user", actor.username)


def tokens_of(session: Session, user_id: str) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
        )
    )


def revoke_token(session: Session, actor: Actor, token_id: str) -> None:
    """Revoke one of the actor's own tokens."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != actor.user_id:
        raise NotFound(f"you have no token {token_id!r}")
    session.delete(row)
    audit.record(
        session, actor, AuditAction.TOKEN_REVOKE, "user", actor.username, {"token": token_id}
    )
