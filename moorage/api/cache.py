"""What a read can answer without the request's session: credentials, valid for one
store generation (``Database.generations``). The rendered workload list is
``services/listing.py``'s, over ``store/renderings.py``.

``CredentialCache``: who a bearer token or a session cookie is, kept while no user,
token or session row changed (a revoked token, a new role, a logout or a password
change applies at once) and for at most ``LAST_USED_EVERY``, after which the store
is asked again and records the token's use. Only credentials the store knew are kept,
by their digest. A cached read thus needs no worker thread and no database at all.

A credential not cached is looked up only if its digest is among those the store holds
(``_Existing``: every token's and session's digest, read again for any credential it
does not hold, one read at a time, shared by every request waiting on it). A made-up
token or cookie used to cost a worker thread and a read each: 600 at once held every
worker thread, and a right login waited 7 s behind them (attacker pass G).

``HookTokens``: which webhook tokens exist, by their digest, for one generation of the
trigger rows; ``vouch`` asks it (and ``CredentialCache``) whether a large body comes
from someone the server knows (``api/limits.BodyLimit``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, cookie_parser

from moorage.api.connections import head_fields
from moorage.errors import MoorageError, Unauthenticated
from moorage.security import secrets as sec
from moorage.security.roles import Actor
from moorage.services import triggers, users
from moorage.store.db import Database

HOOK_PATH = re.compile(r"/hooks/([^/]+)")
VOUCHED = "moorage_vouched"
"""The key of ``vouching``'s answer in a request scope's ``state``."""
SESSION_COOKIE = "moorage_session"


@dataclass(frozen=True)
class _Credential:
    generation: int
    actor: Actor
    csrf: str
    until: float
    """``time.monotonic()`` after which the store is asked again."""


class _Existing:
    """The digests of every API token and web session in the store. ``holds`` answers
    from the last read when it has the digest (the store is asked about it next, so one
    since removed costs nothing wrong), else from a read that starts after the call:
    a token the offline CLI added a moment ago (no generation bump in this process) is
    found. Reads run one at a time, each answering every caller that waited for it, so
    any number of unknown credentials hold one worker thread, not one each."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._digests: frozenset[str] = frozenset()
        self._next: asyncio.Future[frozenset[str]] | None = None
        self._reader: asyncio.Task[None] | None = None

    def forget(self, key: str) -> None:
        """Drop ``key`` from the last read: its row is gone (``CredentialCache._loaded``)."""
        if key in self._digests:
            self._digests = self._digests - {key}

    async def holds(self, key: str) -> bool:
        if key in self._digests:
            return True
        return key in await self._fresh()

    async def _fresh(self) -> frozenset[str]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waited = self._next
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read_all())
        return await asyncio.shield(waited)

    async def _read_all(self) -> None:
        while self._next is not None:
            answered, self._next = self._next, None
            try:
                digests = await run_in_threadpool(self._read)
            except Exception as exc:  # each waiter raises it (an unreadable store)
                answered.set_exception(exc)
                answered.exception()  # retrieved: no "never retrieved" warning
                continue
            self._digests = digests
            answered.set_result(digests)

    def _read(self) -> frozenset[str]:
        with self.db.session() as session:
            tokens, sessions = users.credential_digests(session)
        return frozenset([*("token:" + t for t in tokens), *("session:" + s for s in sessions)])


class CredentialCache:
    def __init__(self, db: Database, *, max_keys: int = 10_000) -> None:
        self.db = db
        self.max_keys = max_keys
        self._known: dict[str, _Credential] = {}
        self._existing = _Existing(db)

    def _current(self, key: str) -> _Credential | None:
        known = self._known.get(key)
        if (
            known is not None
            and known.generation == self.db.generations["credentials"]
            and time.monotonic() < known.until
        ):
            return known
        return None

    def _keep(self, key: str, credential: _Credential) -> None:
        if len(self._known) >= self.max_keys:
            self._known.clear()
        self._known[key] = credential

    async def prime(self) -> None:
        """Read the stored credentials' digests (``_Existing``) once, so ``may_hold``
        knows them before any unknown credential comes. Raises what the read raises."""
        await self._existing._fresh()

    def may_hold(self, key: str) -> bool:
        """Whether a credential (``token:``/``session:`` + its digest) was in the store at
        the last look (``_Existing``) or is cached, with no I/O: False for a made-up
        one, and for one made since by the offline CLI until a request reads again."""
        return key in self._known or key in self._existing._digests

    async def token(self, token: str) -> Actor:
        """The actor of an API token; raises ``Unauthenticated`` for an unknown one."""
        key = "token:" + sec.digest(token)
        known = self._current(key)
        if known is None:
            if not await self._existing.holds(key):
                raise Unauthenticated("invalid API token", code="invalid_token")
            known = await self._loaded(key, self._load_token, token)
        return known.actor

    def _load_token(self, key: str, token: str) -> _Credential:
        generation = self.db.generations["credentials"]  # before the read
        with self.db.session() as session:
            actor = users.actor_for_token(session, token)  # records the use, once a minute
        until = time.monotonic() + users.LAST_USED_EVERY.total_seconds()
        known = _Credential(generation, actor, "", until)
        self._keep(key, known)
        return known

    async def cookie(self, cookie: str) -> tuple[Actor, str]:
        """The actor of a session cookie and its CSRF token; raises ``Unauthenticated``
        for an unknown or ended session."""
        key = "session:" + sec.digest(cookie)
        known = self._current(key)
        if known is None:
            if not await self._existing.holds(key):
                raise Unauthenticated(
                    "your session has ended; log in again", code="session_expired"
                )
            known = await self._loaded(key, self._load_cookie, cookie)
        return known.actor, known.csrf

    async def _loaded(
        self, key: str, load: Callable[[str, str], _Credential], credential: str
    ) -> _Credential:
        """``load`` on a worker thread; a credential the store no longer holds (a revoked
        token, a session logged out or expired) is forgotten: it stayed among the digests
        and the cached keys, so ``may_hold`` said yes to it (a flood naming it was never
        held) and each request read its row on a worker thread (attacker pass I)."""
        try:
            return await run_in_threadpool(load, key, credential)
        except Unauthenticated:
            self._known.pop(key, None)
            self._existing.forget(key)
            raise

    def _load_cookie(self, key: str, cookie: str) -> _Credential:
        generation = self.db.generations["credentials"]
        with self.db.session() as session:
            actor, csrf, expires = users.web_session_for_cookie(session, cookie)
        until = time.monotonic() + min(
            users.LAST_USED_EVERY.total_seconds(), _seconds_until(expires)
        )
        known = _Credential(generation, actor, csrf, until)
        self._keep(key, known)
        return known


def _seconds_until(at: datetime) -> float:
    return (at - datetime.now(UTC)).total_seconds()


class HookTokens:
    """Whether a webhook token exists, without a database read while no trigger row
    changed: the digests of every token, loaded again after a commit that touched the
    ``triggers`` table (``Database.generations["hooks"]``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._generation = -1
        self._digests: frozenset[str] = frozenset()

    def may_know(self, token: str) -> bool:
        """Whether ``token`` may be a webhook's, with no I/O: from the digests loaded for
        the current generation; True when they are stale (only ``known`` can tell)."""
        if self._generation != self.db.generations["hooks"]:
            return True
        return sec.digest(token) in self._digests

    async def known(self, token: str) -> bool:
        if self._generation != self.db.generations["hooks"]:
            await run_in_threadpool(self._load)
        return sec.digest(token) in self._digests

    def _load(self) -> None:
        generation = self.db.generations["hooks"]  # before the read
        with self.db.session() as session:
            tokens = triggers.hook_tokens(session)
        self._digests = frozenset(sec.digest(t) for t in tokens)
        self._generation = generation


def vouching(
    credentials: CredentialCache, hooks: HookTokens
) -> Callable[[MutableMapping[str, Any]], Awaitable[bool]]:
    """``pacing.Pace``'s and ``BodyLimit``'s ``vouch``: True when a request (its ASGI
    scope) comes from someone the server knows: a POST to a webhook that exists, or a
    bearer token or session cookie it accepts (no CSRF check here; the route makes it).
    Asked once per request: the answer is kept in the scope's ``state`` (``VOUCHED``),
    where the second middleware finds it (a made-up token would otherwise cost a second
    read of the stored digests). Raises nothing."""

    async def vouch(scope: MutableMapping[str, Any]) -> bool:
        state = scope.setdefault("state", {})
        known = state.get(VOUCHED)
        if known is None:
            known = state[VOUCHED] = await _ask(scope)
        return bool(known)

    async def _ask(scope: MutableMapping[str, Any]) -> bool:
        hook = HOOK_PATH.fullmatch(scope["path"])
        if scope["method"] == "POST" and hook is not None:
            return await hooks.known(hook[1])
        connection = HTTPConnection(scope)
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        cookie = connection.cookies.get(SESSION_COOKIE)
        try:
            if scheme.lower() == "bearer" and token.strip():
                await credentials.token(token.strip())
                return True
            if not scheme and cookie:
                await credentials.cookie(cookie)
                return True
        except MoorageError:
            return False
        return False

    return vouch


def raw_vouching(credentials: CredentialCache, hooks: HookTokens) -> Callable[[bytes], bool]:
    """``connections.GuardedH11.vouchable``: whether the first bytes of a request (its
    head, or the start of it) name a credential ``vouching`` may accept, with no I/O: a
    POST to a webhook token that may exist (``HookTokens.may_know``), or a bearer token
    or session cookie the store held at the last look (``CredentialCache.may_hold``).
    A request it says no to waits unparsed while its address is in debt
    (``api/pacing.py``); made-up URLs, tokens and cookies (attacker pass G's floods)
    therefore wait too. Raises nothing.

    It reads the head as ``vouching`` does (Starlette's ``headers.get`` and ``cookies``):
    the first ``Authorization`` field, else the last session cookie of the ``Cookie``
    fields, one digest at most. Every field and every cookie of them was digested: a
    16 KiB ``Cookie`` of ``moorage_session=a;`` parts cost 900 digests on the event loop
    for each head judged, and a good token in a second field, which ``Pace`` refuses,
    kept a flood from being held (attacker pass I)."""

    def vouchable(data: bytes) -> bool:
        request_line, fields = head_fields(data)
        method, _, rest = request_line.partition(b" ")
        target = rest.partition(b" ")[0].partition(b"?")[0].decode("latin-1")
        hook = HOOK_PATH.fullmatch(target)
        if method == b"POST" and hook is not None:
            return hooks.may_know(hook[1])
        authorization = next((v for n, v in fields if n == b"authorization"), b"")
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return credentials.may_hold("token:" + sec.digest(token.strip().decode("latin-1")))
        if scheme:
            return False
        cookies: dict[str, str] = {}
        for name, value in fields:
            if name == b"cookie":
                cookies.update(cookie_parser(value.decode("latin-1")))
        session = cookies.get(SESSION_COOKIE)
        return (
            session is not None
            and session != ""
            and credentials.may_hold("session:" + sec.digest(session))
        )

    return vouchable


UNKNOWN_HOOK = "no webhook at this URL; check the token on the trigger"


def unknown_hook(
    hooks: HookTokens,
) -> Callable[[MutableMapping[str, Any]], Awaitable[tuple[int, str, str] | None]]:
    """``BodyLimit``'s ``unread``: a POST to a ``/hooks/{token}`` no trigger has is 404
    ``unknown_hook`` before its body is read or a worker thread taken (attacker pass G:
    a flood of made-up hook URLs held every worker thread). None for anything else."""

    async def refuse(scope: MutableMapping[str, Any]) -> tuple[int, str, str] | None:
        hook = HOOK_PATH.fullmatch(scope["path"])
        if scope["method"] != "POST" or hook is None or await hooks.known(hook[1]):
            return None
        return 404, "unknown_hook", UNKNOWN_HOOK

    return refuse
