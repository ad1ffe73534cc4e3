"""Wire the FastAPI application: state, error mapping, body cap and routers. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from moorage import __version__
from moorage.api import errors
from moorage.api.deps import AppState
from moorage.api.docs import install_docs
from moorage.api.limits import BodyLimit, PlainUrl
from moorage.api.routes import (
    audit,
    bindings,
    chain,
    deploys,
    env,
    health,
    hooks,
    kinds,
    metrics,
    projects,
    restores,
    session,
    snapshots,
    triggers,
    users,
    volumes,
    workloads,
)
from moorage.api.routes.snapshots import IMPORT_SUFFIX
from moorage.api.ui import mount_ui
from moorage.deployer.service import Deployer
from moorage.deployer.trigger_runner import TriggerRunner
from moorage.plugins.registry import Registry
from moorage.settings import Settings
from moorage.snapshots.capture import Snapshotter
from moorage.snapshots.restore import RestoreEngine
from moorage.store.db import Database

ROUTERS = (
    health.router,
    session.router,
    users.router,
    projects.router,
    workloads.router,
    deploys.router,
    env.router,
    volumes.router,
    chain.router,
    bindings.router,
    triggers.router,
    hooks.router,
    snapshots.router,
    restores.router,
    metrics.router,
    kinds.router,
    audit.router,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: Settings, db: Database, registry: Registry, deployer: Deployer) -> FastAPI:
    snapshotter = Snapshotter(deployer)
    restorer = RestoreEngine(deployer)
    runner = TriggerRunner(deployer, on_snapshot=snapshotter.start)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        deployer.prune_pins()  # pins of containers that went away while we were down
        snapshotter.recover()  # fails cut-off captures (and pre-restore packs) first
        restorer.recover()  # decide cut-off restores' volumes before anything is served
        # then reconcile revives whatever a capture or restore left stopped
        deployer.start()
        restorer.resume()  # redeploy what the recovered restores stopped, health-checked
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            deployer.stop()

    app = _routes_only(lifespan)
    app.state.moorage = AppState(
        settings=settings,
        db=db,
        registry=registry,
        deployer=deployer,
        runner=runner,
        snapshotter=snapshotter,
        restorer=restorer,
    )
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, streamed_suffixes=(IMPORT_SUFFIX,)
    )
    app.add_middleware(PlainUrl)  # added last: it runs first
    if settings.web_dir is not None:
        mount_ui(app, settings.web_dir)
    return app


def _routes_only(lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(
        title="Moorage",
        version=__version__,
        openapi_url="/api/openapi.json",
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
