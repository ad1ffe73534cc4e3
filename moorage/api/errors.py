"""The only place that maps Moorage errors to HTTP status codes and JSON bodies.

Every error leaves as ``errors.error_body``: ``{"error": {"code", "message", "details"}}``,
with a code of ``errors.CODES``; an unexpected exception is logged on the server and
answered with a plain 500, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moorage import errors
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


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    kinds = set()
    for err in exc.errors():
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


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.MoorageError, _moorage_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
