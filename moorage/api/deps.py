"""Dependencies as ``Annotated`` aliases: the database session, settings, registry, actor.

Routes declare ``session: DbSession`` and ``actor: Operator``; nothing else in
the API reads credentials or opens transactions, but ``api/cache.py``, which answers
hot reads without a request's session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from moorage.api.cache import SESSION_COOKIE, CredentialCache, HookTokens
from moorage.api.urgency import urgent_pool
from moorage.deployer.facade import Deployer
from moorage.deployer.trigger_runner import TriggerRunner
from moorage.errors import Forbidden, Unauthenticated
from moorage.offsite.copier import Copier
from moorage.plugins.registry import Registry
from moorage.proxy.router import Router
from moorage.security import secrets as sec
from moorage.security.logins import LoginGuard, PasswordGate
from moorage.security.roles import Actor, Role
from moorage.services.listing import WorkloadListing
from moorage.services.ratelimit import RateLimiter
from moorage.settings import Settings
from moorage.snapshots.capture import Snapshotter
from moorage.snapshots.checkpoint import Rollback
from moorage.snapshots.clone import Cloner
from moorage.snapshots.drills import DrillRunner
from moorage.snapshots.recovery_points import RecoveryPoints
from moorage.snapshots.restore import RestoreEngine
from moorage.store.db import Database

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppState:
    settings: Settings
    db: Database
    registry: Registry
    deployer: Deployer
    runner: TriggerRunner
    snapshotter: Snapshotter
    restorer: RestoreEngine
    copier: Copier
    cloner: Cloner
    drills: DrillRunner
    recovery_points: RecoveryPoints
    limiter: RateLimiter = field(default_factory=RateLimiter)
    logins: LoginGuard = field(default_factory=LoginGuard)
    password_gate: PasswordGate = field(default_factory=PasswordGate)
    proxy: Router | None = None
    """Caddy's router, when MOORAGE_PROXY=caddy."""
    rollbacks: Rollback | None = None
    """Rollbacks with data (SPEC section 10)."""
    list_cache: WorkloadListing = field(init=False)
    """``GET /api/workloads`` as sent, per filter, rebuilt once per store generation."""
    credentials: CredentialCache = field(init=False)
    hook_tokens: HookTokens = field(init=False)
    """Which webhook tokens exist (a large body to one is read: ``api/limits``)."""
    first_pool: ThreadPoolExecutor = field(init=False)
    """The threads of urgent webhook calls' work (``urgency.urgent_pool``). The app's
    lifespan puts one in that it shuts down at its end; this one serves an app whose
    lifespan never ran."""

    def __post_init__(self) -> None:
        self.list_cache = WorkloadListing(self.db)
        self.credentials = CredentialCache(self.db)
        self.hook_tokens = HookTokens(self.db)
        self.first_pool = urgent_pool()


async def app_state(request: Request) -> AppState:  # async: no worker thread for a lookup
    state: AppState = request.app.state.moorage
    return state


State = Annotated[AppState, Depends(app_state)]


def db_session(state: State) -> Iterator[Session]:
    # scope="function": the transaction commits before the response goes out, so a
    # client never sees a 201 for a row the next request cannot read.
    with state.db.session() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]


async def current_actor(request: Request, state: State) -> Actor:
    """Who is asking. Credentials come from ``state.credentials``: a known one costs no
    worker thread and no database read (see ``api/cache.py``)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'", code="invalid_token")
        return await state.credentials.token(token.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        actor, csrf = await state.credentials.cookie(cookie)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not sec.same(sent, csrf):
                raise Forbidden(
                    f"a request made with a session cookie needs the {CSRF_HEADER} header "
                    "from POST /api/session",
                    code="csrf_failed",
                )
        return actor
    raise Unauthenticated("log in or send 'Authorization: Bearer <token>'", code="unauthenticated")


ROLE_CHECKS: dict[Callable[..., Any], Role] = {}
"""Each ``require`` check and the role it asks for (``api/errors.declare`` reads it)."""


def require(role: Role) -> Callable[[Actor], Awaitable[Actor]]:
    async def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:  # no I/O
        if not actor.can(role):
            raise Forbidden(f"this needs the {role} role; you are {actor.role}", code="forbidden")
        return actor

    check.__name__ = f"require_{role}"
    ROLE_CHECKS[check] = role
    return check


Viewer = Annotated[Actor, Depends(require("viewer"))]
Operator = Annotated[Actor, Depends(require("operator"))]
Admin = Annotated[Actor, Depends(require("admin"))]
