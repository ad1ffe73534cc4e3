"""Wire the FastAPI application: state, error mapping, body cap and routers. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from moorage import __version__
from moorage.api import errors
from moorage.api.deps import AppState
from moorage.api.limits import BodyLimit
from moorage.api.routes import (
    audit,
    bindings,
    chain,
    deploys,
    env,
    health,
    hooks,
    kinds,
    projects,
    session,
    triggers,
    users,
    volumes,
    workloads,
)
from moorage.deployer.service import Deployer
from moorage.deployer.triggers import TriggerRunner
from moorage.plugins.registry import Registry
from moorage.settings import Settings
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
    kinds.router,
    audit.router,
)


def create_app(settings: Settings, db: Database, registry: Registry, deployer: Deployer) -> FastAPI:
    runner = TriggerRunner(deployer)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        deployer.start()
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            deployer.stop()

    app = FastAPI(
        title="Moorage",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.moorage = AppState(
        settings=settings, db=db, registry=registry, deployer=deployer, runner=runner
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
