"""Wire the FastAPI application: state, error mapping, body cap and routers. Nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI

from moorage import __version__
from moorage.api import errors
from moorage.api.cache import raw_vouching, unknown_hook, vouching
from moorage.api.connections import current
from moorage.api.deps import AppState
from moorage.api.docs import install_docs
from moorage.api.limits import BodyLimit, JsonErrors, PlainUrl, RequestHead
from moorage.api.pacing import Buckets, Pace
from moorage.api.routes import (
    audit,
    bindings,
    chain,
    clones,
    deploys,
    dns_providers,
    domains,
    drills,
    env,
    hooks,
    instance,
    kinds,
    liveness,
    metrics,
    offsite,
    projects,
    recovery_points,
    restores,
    rollback,
    session,
    snapshot_hooks,
    snapshots,
    storage_targets,
    triggers,
    users,
    volumes,
    workloads,
)
from moorage.api.routes.snapshots import IMPORT_PATH
from moorage.api.ui import mount_ui
from moorage.api.urgency import HookFirst, urgent_pool
from moorage.server import Server

ROUTERS = (
    liveness.router,
    session.router,
    users.router,
    projects.router,
    workloads.router,
    deploys.router,
    env.router,
    volumes.router,
    domains.router,
    dns_providers.router,
    chain.router,
    bindings.router,
    triggers.router,
    hooks.router,
    snapshots.router,
    snapshot_hooks.router,
    restores.router,
    rollback.router,
    offsite.router,
    instance.router,
    clones.router,
    drills.router,
    drills.standings_router,
    recovery_points.router,
    storage_targets.router,
    metrics.router,
    kinds.router,
    audit.router,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(server: Server) -> FastAPI:
    """The API over a built ``Server`` (``moorage/server.py``): its lifespan runs the
    server's start-up recovery and background threads, and stops them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # While a webhook delivery is answered (a foreground block), the event loop steps
        # aside as the deploy workers do: ``store/priority.py``.
        loop = asyncio.get_running_loop()
        priority = server.db.priority

        def step_aside() -> None:
            with suppress(RuntimeError):  # the loop closed meanwhile: nothing to pause
                loop.call_soon_threadsafe(priority.step_aside)

        undo = priority.on_open(step_aside)
        try:
            server.start()  # start-up recovery, in order, then the background threads
            # The stored credentials' digests, read once now: a held connection's first
            # bytes are judged by them (``cache.raw_vouching``), and before any read a
            # valid token from an address in debt waited the debt out (attacker pass H).
            await app.state.moorage.credentials.prime()
            # The urgent webhook calls' threads live as long as the app serves.
            # After it, the app's own pool is back: a shut-down pool failed every urgent
            # call an app served after its lifespan (RuntimeError, a 500).
            own = app.state.moorage.first_pool
            with urgent_pool() as pool:
                app.state.moorage.first_pool = pool
                try:
                    yield
                finally:
                    app.state.moorage.first_pool = own
                    server.stop()
        finally:
            undo()

    app = _routes_only(lifespan)
    app.state.moorage = AppState(
        settings=server.settings,
        db=server.db,
        registry=server.registry,
        deployer=server.deployer,
        runner=server.runner,
        snapshotter=server.snapshotter,
        restorer=server.restorer,
        copier=server.copier,
        proxy=server.proxy,
        cloner=server.cloner,
        drills=server.drills,
        recovery_points=server.recovery_points,
        rollbacks=server.rollbacks,
    )
    state = app.state.moorage
    vouch = vouching(state.credentials, state.hook_tokens)
    rate = server.settings.anonymous_rate
    app.state.buckets = Buckets(rate) if rate > 0 else None
    app.state.raw_vouching = raw_vouching(state.credentials, state.hook_tokens)
    app.add_middleware(
        BodyLimit,
        max_bytes=server.settings.max_body_bytes,
        streamed=IMPORT_PATH,
        vouch=vouch,
        unread=unknown_hook(state.hook_tokens),
    )
    app.add_middleware(PlainUrl)
    app.add_middleware(HookFirst, urgent=server.db.priority.urgent, vouch=vouch)
    app.add_middleware(Pace, buckets=app.state.buckets, vouch=vouch, connection=current)
    app.add_middleware(RequestHead)
    app.add_middleware(JsonErrors)  # added last: it runs first, around everything
    if server.settings.web_dir is not None:
        mount_ui(app, server.settings.web_dir)
    return app


def _routes_only(lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(
        title="Moorage",
        version=__version__,
        openapi_url=None,  # served by install_docs, rendered once
        docs_url=None,  # served by install_docs, from packaged assets
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    install_docs(app)
    for router in ROUTERS:
        errors.declare(router)  # the error answers of its routes, into the document
        app.include_router(router)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, without a store or an engine: the UI's client is generated from it."""
    return _routes_only().openapi()
