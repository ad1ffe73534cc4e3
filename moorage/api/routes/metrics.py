"""``GET /metrics``: Prometheus text format, no credentials (like ``/api/healthz``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from moorage import metrics as _defined  # noqa: F401 - registers Moorage's metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
