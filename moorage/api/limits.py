"""ASGI middleware that refuses a request before any route sees it, in Moorage's error
shape: a body over its cap (413), a URL holding a control character (422)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from moorage.errors import error_body
from moorage.text import LINE, describe, refused

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Read at most ``max_bytes`` of a body before the app sees it.

    Paths ending in ``streamed_suffixes`` (archive uploads) are left alone: their
    routes stream to disk and enforce their own caps.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, streamed_suffixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed_suffixes = streamed_suffixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(self.streamed_suffixes):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        await send_error(
            send,
            413,
            "payload_too_large",
            f"request body is larger than {self.max_bytes} bytes",
            {"max_bytes": self.max_bytes},
        )


class PlainUrl:
    """Refuse a URL whose path or query string holds a control character, a NUL or a lone
    surrogate (``text.LINE``) with 422 ``invalid_text``: no path parameter or query value
    takes one, so nothing downstream (the database, a log line) ever sees one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _url_problem(scope)
            if problem is not None:
                where, char = problem
                await send_error(
                    send,
                    422,
                    "invalid_text",
                    f"invalid request: {where}: holds {describe(char)}",
                    [{"field": where, "message": f"holds {describe(char)}"}],
                )
                return
        await self.app(scope, receive, send)


def _url_problem(scope: Scope) -> tuple[str, str] | None:
    """(which part, the character) of the first refused character in the URL."""
    char = refused(scope["path"], LINE)  # already percent-decoded by the server
    if char is not None:
        return "path", char
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        char = refused(name, LINE)
        if char is not None:
            return "query", char
        char = refused(value, LINE)
        if char is not None:
            return f"query.{name}", char
    return None


async def send_error(send: Send, status: int, code: str, message: str, details: Any = None) -> None:
    body = json.dumps(error_body(code, message, details)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
