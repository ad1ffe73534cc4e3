"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter

from moorage import __version__
from moorage.api.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    return Health(status="ok", version=__version__)
