"""The only place that maps Moorage errors to HTTP status codes and JSON bodies.

Every error leaves as ``errors.error_body``: ``{"error": {"code", "message", "details"}}``,
with a code of ``errors.CODES``; an unexpected exception is logged on the server and
answered with a plain 500, never a stack trace. ``declare`` and ``responses`` put them in
the OpenAPI document, as ``ErrorOut``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from moorage import errors
from moorage.api.deps import ROLE_CHECKS, SAFE_METHODS, current_actor
from moorage.api.schemas import ErrorOut
from moorage.errors import CODES, error_body

log = logging.getLogger("moorage.api")

STATUS: dict[type[errors.MoorageError], int] = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.PreconditionRequired: 428,
    errors.TooManyRequests: 429,
    errors.Busy: 503,
    errors.DiskFull: 507,
    errors.EngineUnavailable: 503,
    errors.EngineError: 502,
    errors.TargetError: 502,
    errors.DumpFailed: 502,
    errors.DeployFailed: 500,
    errors.PluginError: 500,
    errors.ConfigError: 500,
}

# The codes of the refusals Starlette raises itself, by their status.
_HTTP_CODES = {
    CODES[code].status: code
    for code in (
        "bad_request",
        "not_found",
        "method_not_allowed",
        "not_acceptable",
        "payload_too_large",
        "unsupported_media_type",
    )
}


def status_for(exc: errors.MoorageError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _moorage_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.MoorageError)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.RetryLater):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details),
        status_code=status_for(exc),
        headers=headers or None,
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


MAX_DETAILS = 20
"""Problems an invalid request's answer lists: a body with 100,000 unknown keys once
answered 6 MB, built on the event loop (attacker pass C)."""


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    kinds = set()
    errors = exc.errors()
    for err in errors[:MAX_DETAILS]:
        kind = err.get("type", "")
        kinds.add(kind)
        message = "the body is not valid JSON" if kind == "json_invalid" else err.get("msg", "")
        field = _field(err.get("loc", ()))
        if kind == "invalid_text":  # the model names the field within itself
            where = str(err.get("ctx", {}).get("where", ""))
            field = where if field == "body" else f"{field}.{where}"
        elif kind == "string_unicode":  # pydantic's own refusal of a lone surrogate
            message = "holds a lone surrogate, which is not text"
        details.append({"field": field, "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    if len(errors) > MAX_DETAILS:
        left = len(errors) - MAX_DETAILS
        details.append({"field": "body", "message": f"and {left} more problems not listed"})
    code = "invalid_text" if kinds <= {"invalid_text", "string_unicode"} else "invalid_request"
    return JSONResponse(error_body(code, f"invalid request: {summary}", details), status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else code.replace("_", " ")
    if exc.status_code == 404:
        message = "no such endpoint; see /api/openapi.json"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        error_body("internal", "internal error; the server log has the details"), status_code=500
    )


# What each error status means in the document; ``error.code`` says which refusal it was.
_MEANING = {
    400: "Malformed request (`bad_request`)",
    401: "No valid credentials (`unauthenticated`, `invalid_token`, `session_expired`, ...)",
    403: "The role is too low, or a cookie session sent no X-CSRF-Token (`forbidden`, ...)",
    404: "The object the path names does not exist (`not_found`, ...)",
    409: "Clashes with the current state (`duplicate`, `workload_busy`, ...)",
    413: "The request body is over its cap (`payload_too_large`)",
    422: "The input breaks a rule (`invalid_request`, `invalid_text`, ...)",
    428: "A confirmation is missing (`confirmation_required`)",
    429: "Too many requests; Retry-After says when to try again",
    502: "The container engine refused or failed (`engine_error`)",
    503: "Busy, or the container engine is unreachable; Retry-After when busy",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the error answers it gives beyond those ``declare`` finds
    from its shape, each in the error shape (``ErrorOut``)."""
    return {status: {"model": ErrorOut, "description": _MEANING[status]} for status in statuses}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def shape_statuses(route: APIRoute) -> set[int]:
    """The error statuses a route can answer by its shape: 401 behind credentials; 403 for
    an operator's or admin's route, and for a change (a cookie session needs its CSRF
    header); 404 for an object its path names; 422 when it takes parameters or a body; 413
    for a body."""
    calls = list(_calls(route.dependant))
    statuses = set()
    if current_actor in calls:
        statuses.add(401)
        roles = {ROLE_CHECKS[c] for c in calls if c in ROLE_CHECKS}
        if roles - {"viewer"} or not set(route.methods or ()) <= SAFE_METHODS:
            statuses.add(403)
    d = route.dependant
    if d.path_params:
        statuses.add(404)
    if d.path_params or d.query_params or d.header_params or d.body_params:
        statuses.add(422)
    if d.body_params:
        statuses.add(413)
    return statuses


def declare(router: APIRouter) -> None:
    """Put the error answers of every route of ``router`` in the OpenAPI document: those of
    its shape (``shape_statuses``) and those the route declares (``responses``)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.responses = {**responses(*sorted(shape_statuses(route))), **route.responses}


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.MoorageError, _moorage_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
