"""ASGI middleware that refuses a request before any route sees it, in Moorage's error
shape: a request head over its bounds (431, 414), a URL holding a control character
(422), a body over its cap (413) or too slow (408), one past 16 KiB from a sender
the server does not know (401), or one more body than the server holds at once (503);
and ``JsonErrors``, which gives any error answered in another shape (Starlette's
plain-text range errors) Moorage's.

Deadlines and bounds on connections themselves (a head that never ends, too many
connections) are ``connections.py``'s.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from moorage.errors import error_body
from moorage.security.logins import address_key
from moorage.text import LINE, describe, refused

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_HEADERS = 100
"""Header lines in one request (Go's and nginx's defaults allow about as many bytes)."""
MAX_HEADER_BYTES = 16 * 1024
"""Bytes of names and values in one request head: h11 holds an unfinished head to this,
but a head that arrives whole in one read passed at any size (87 KB were seen)."""
MAX_PATH_BYTES = 2048
"""The longest path read; no route or UI file is near it."""
MAX_PATH_SEGMENTS = 64
MAX_QUERY_BYTES = 8 * 1024
MAX_QUERY_PARAMS = 100
BODY_SECONDS = 30.0
"""For a body Moorage reads whole (at most ``max_body_bytes``, 1 MiB): a client slower
than about 35 KB/s is refused, so a body cannot hold its memory for long."""
SMALL_BODY = 16 * 1024
"""The first bytes of each body, which count against no budget (bounded by the
connections themselves, ``connections.py``)."""
BODY_BUDGET = 64 * 1024 * 1024
"""Bytes of bodies held at once by requests in progress from senders the server knows;
past it a request gets 503 ``busy`` (1,500 connections each sending 1 MiB and going
quiet held 1.8 GB)."""

Vouch = Callable[[Scope], Awaitable[bool]]
Refusal = tuple[int, str, str]
"""An answer to a request before its body is read: (HTTP status, error code, message)."""
Unread = Callable[[Scope], Awaitable[Refusal | None]]


@dataclass
class _Pool:
    """Bytes that bodies of one pool hold now, all of them and per address key; only
    the event loop changes them."""

    held: int = 0
    by_address: dict[str, int] = field(default_factory=dict)


@dataclass
class _Hold:
    """What one request's body holds: its client's address key, its bytes so far, those
    counted against the budgets (past ``SMALL_BODY``), and its pool (None until its body
    first passes ``SMALL_BODY`` and ``vouch`` vouches for it)."""

    address: str
    size: int = 0
    counted: int = 0
    pool: _Pool | None = None


def announces_body(headers: Mapping[bytes, bytes]) -> bool:
    """Whether a head (its fields by lower-case name) announces a body: a
    ``content-length`` other than blank or 0, or any ``transfer-encoding``
    (RFC 9112 section 6.3)."""
    length = headers.get(b"content-length")
    return (length is not None and length.strip() not in (b"", b"0")) or (
        b"transfer-encoding" in headers
    )


class BodyLimit:
    """Read at most ``max_bytes`` of a body before the app sees it.

    A path ``streamed`` matches whole (the archive upload) is left alone: its route
    streams to disk and enforces its own cap. A GET or HEAD with a body is 400 unread.
    What bodies hold at once is bounded twice: ``budget`` for all requests, and an
    eighth of it per client address (``security.logins.address_key``); the first
    ``SMALL_BODY`` bytes of each body count against neither, so small requests (a login,
    a token) go on while large bodies fill the budget (attacker pass C: 64 connections
    of 1 MiB from one address once turned every POST away). When a body first passes
    ``SMALL_BODY``, ``vouch`` is asked once whether the server knows its sender (a
    webhook that exists, a token or session it accepts: ``api/cache.vouching``); such
    bodies count against the budget; any other is 401 ``unauthenticated`` there, unread
    further. No route takes more than ``SMALL_BODY`` from a sender it does not know (a
    login is under 7 KiB; a webhook delivery's token vouches for it), and the event loop
    parses each JSON body whole before any route asks who sent it: anonymous bodies of
    1 MiB (90,000 keys each) at 11 a second from 16 addresses held a token's listing
    1.5 s (attacker pass H). Anonymous bodies once had a budget of their own (so they
    turned away no webhook delivery or logged-in upload: attacker pass E, M2). Without
    ``vouch`` every body is let into the budget.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        streamed: re.Pattern[str] | None = None,
        budget: int = BODY_BUDGET,
        seconds: float = BODY_SECONDS,
        vouch: Vouch | None = None,
        unread: Unread | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed
        self.budget = budget
        self.share = budget // 8
        self.seconds = seconds
        self.vouch = vouch
        self.unread = unread
        """Asked before a body is read: a refusal it names is answered at once, the body
        unread (a made-up webhook URL: ``api/cache.unknown_hook``)."""
        self.vouched = _Pool()
        """Bytes (past each body's first ``SMALL_BODY``) that requests in progress hold
        now, of senders ``vouch`` knows."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.streamed is not None and self.streamed.fullmatch(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if scope["method"] in ("GET", "HEAD") and announces_body(headers):
            await send_error(send, 400, "bad_request", f"a {scope['method']} takes no body")
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        refusal = await self.unread(scope) if self.unread is not None else None
        if refusal is not None:
            await send_error(send, *refusal)
            return
        client = scope.get("client")
        hold = _Hold(address_key(client[0]) if client else "")
        try:
            try:
                async with asyncio.timeout(self.seconds):
                    body, why = await self._read(scope, receive, hold)
            except TimeoutError:
                await send_error(
                    send,
                    408,
                    "request_timeout",
                    f"the request body did not arrive within {self.seconds:g} s",
                )
                return
            if why == "disconnect":
                return
            if why == "too_large":
                await self._reject(send)
                return
            if why == "unvouched":
                await send_error(
                    send,
                    401,
                    "unauthenticated",
                    f"a request body over {SMALL_BODY // 1024} KiB needs a token or session "
                    "the server accepts, or a webhook URL that exists",
                )
                return
            if why == "busy":
                await send_error(
                    send,
                    503,
                    "busy",
                    "the server holds as many request bodies as it takes at once; "
                    "try again in a moment",
                    {"retry_after": 1},
                )
                return
            await self._forward(scope, receive, send, body)
        finally:
            self._release(hold)

    async def _read(self, scope: Scope, receive: Receive, hold: _Hold) -> tuple[bytes, str | None]:
        """(body, why it was refused: ``disconnect``, ``too_large``, ``unvouched``,
        ``busy``, or None); ``hold`` counts what it holds against the budgets as it reads."""
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", "disconnect"
            chunk = message.get("body", b"")
            if hold.size + len(chunk) > self.max_bytes:
                return b"", "too_large"
            counted = max(0, hold.size + len(chunk) - SMALL_BODY) - hold.counted
            if counted:
                pool = hold.pool or await self._pool_of(scope, hold)
                if pool is None:
                    return b"", "unvouched"
                mine = pool.by_address.get(hold.address, 0)
                if pool.held + counted > self.budget or mine + counted > self.share:
                    return b"", "busy"
                hold.counted += counted
                pool.held += counted
                pool.by_address[hold.address] = mine + counted
            hold.size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks), None

    async def _pool_of(self, scope: Scope, hold: _Hold) -> _Pool | None:
        """The budget of a body past ``SMALL_BODY``: None when ``vouch`` knows not whom
        it comes from."""
        if self.vouch is None or await self.vouch(scope):
            hold.pool = self.vouched
        return hold.pool

    def _release(self, hold: _Hold) -> None:
        pool = hold.pool
        if pool is None:
            return
        pool.held -= hold.counted
        left = pool.by_address.get(hold.address, 0) - hold.counted
        if left > 0:
            pool.by_address[hold.address] = left
        else:
            pool.by_address.pop(hold.address, None)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
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


class RequestHead:
    """Refuse a request head over its bounds before anything reads it: more than
    ``MAX_HEADERS`` header lines or ``MAX_HEADER_BYTES`` of them (431
    ``headers_too_large``), a path over ``MAX_PATH_BYTES`` or ``MAX_PATH_SEGMENTS``, a
    query string over ``MAX_QUERY_BYTES`` or with more than ``MAX_QUERY_PARAMS``
    parameters (414 ``uri_too_long``), both ``Transfer-Encoding`` and
    ``Content-Length`` (400 ``bad_request``: RFC 9112 section 6.3 lets a server refuse
    it, and a proxy in front that reads the other one would see another request).
    Each costs the server work per item before a route or a login runs (a header dict
    built by a route was quadratic: 8,000 headers held the event loop 5 s; a 60 KB UI
    path cost 0.3 s of resolving, one lstat per segment of an ever longer path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
                await send_error(
                    send,
                    431,
                    "headers_too_large",
                    f"the request has {len(headers)} header lines of {size} bytes; at most "
                    f"{MAX_HEADERS} lines and {MAX_HEADER_BYTES} bytes are read",
                    {"max_headers": MAX_HEADERS, "max_bytes": MAX_HEADER_BYTES},
                )
                return
            path = scope.get("raw_path") or scope.get("path", "").encode()
            if len(path) > MAX_PATH_BYTES or path.count(b"/") > MAX_PATH_SEGMENTS:
                await send_error(
                    send,
                    414,
                    "uri_too_long",
                    f"the path is over {MAX_PATH_BYTES} bytes or {MAX_PATH_SEGMENTS} segments",
                    {"max_bytes": MAX_PATH_BYTES, "max_segments": MAX_PATH_SEGMENTS},
                )
                return
            names = {name.lower() for name, _ in headers}
            if b"transfer-encoding" in names and b"content-length" in names:
                await send_error(
                    send,
                    400,
                    "bad_request",
                    "the request has both Transfer-Encoding and Content-Length; send one",
                )
                return
            query = scope.get("query_string", b"")
            if len(query) > MAX_QUERY_BYTES or query.count(b"&") >= MAX_QUERY_PARAMS:
                await send_error(
                    send,
                    414,
                    "uri_too_long",
                    f"the query string is over {MAX_QUERY_BYTES} bytes or "
                    f"{MAX_QUERY_PARAMS} parameters",
                    {"max_bytes": MAX_QUERY_BYTES, "max_params": MAX_QUERY_PARAMS},
                )
                return
        await self.app(scope, receive, send)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


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


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer an error in Moorage's shape from ASGI middleware, and close the connection
    (what is left of the request is not read)."""
    body = json.dumps(error_body(code, message, details)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_STATUS_CODES = {
    400: ("bad_request", "the request could not be read (a malformed header, such as Range)"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    416: (
        "range_not_satisfiable",
        "the requested range is not within the file: ask for bytes below its size",
    ),
}


class JsonErrors:
    """Every error answer in Moorage's shape (``errors.error_body``): an answer of status
    400 or more whose content type is not JSON (Starlette's ``FileResponse`` answers a
    malformed or unsatisfiable ``Range`` in plain text) is replaced by a JSON error of
    the same status, keeping its ``content-range`` and ``allow`` headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def checked(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] >= 400:
                headers = dict(message.get("headers") or [])
                if not _is_json(headers.get(b"content-type", b"")):
                    replaced = True
                    status = message["status"]
                    code, text = _STATUS_CODES.get(status, ("http_error", f"HTTP {status}"))
                    kept = [(k, v) for k, v in headers.items() if k in (b"content-range", b"allow")]
                    await send_error(send, status, code, text, extra_headers=kept)
                    return
            if replaced:
                return  # the replaced answer's body
            await send(message)

        await self.app(scope, receive, checked)
