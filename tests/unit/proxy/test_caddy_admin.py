"""``proxy.caddy.CaddyProcess.config`` over an admin API that answers oddly: a Caddy stopping
after ``POST /stop`` answered 200 with an empty body, and the next Moorage's start-up
died on it (``JSONDecodeError``); the answer is "not answering", never a crash."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from moorage.proxy.caddy import CaddyProcess


@pytest.fixture
def admin() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """An admin API on a free loopback port; it answers each ``GET`` with the next
    (status, body) of the list the test fills."""
    answers: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "seen"),
    [
        (200, b"", None),  # stopping
        (200, b'{"apps": {', None),  # cut short
        (200, b"<html>not caddy</html>", None),
        (500, b'{"error": "x"}', None),
        (200, b'{"apps": {}}', {"apps": {}}),
    ],
)
def test_an_answer_that_is_not_a_config_is_no_answer(
    admin: tuple[str, list[tuple[int, bytes]]],
    tmp_path: Path,
    status: int,
    body: bytes,
    seen: object,
) -> None:
    address, answers = admin
    answers.append((status, body))
    assert CaddyProcess("caddy", address, tmp_path).config() == seen
