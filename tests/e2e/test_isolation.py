"""The browser's requests survive Docker's network changes on the host (``isolation.py``)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import RUN_ID, unique
from tests.e2e.conftest import Ui

IMAGE = "moorage-test/httpd:1"
ANSWER_AFTER = 1.0
REQUESTS = 36
"""Six waves of six connections: about ``6 * ANSWER_AFTER`` s of pending requests."""
"""Seconds the slow server keeps each request waiting: the networks change meanwhile."""


class Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(ANSWER_AFTER)
        body = b"done"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def slow_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def flip_networks(stop: threading.Event) -> None:
    """Start and remove containers on a bridge network of their own until ``stop``, as
    deploys and teardowns do: each adds a veth interface on the host and takes it away (with
    its link-local address), and the network's bridge comes and goes with them."""
    while not stop.is_set():
        name = unique("e2e-flip")
        label = f"moorage.test={RUN_ID}"
        docker = ["docker", "network", "create", "--label", label, name]
        subprocess.run(docker, check=True, capture_output=True)
        try:
            subprocess.run(
                ["docker", "run", "--rm", "--label", label, "--network", name, IMAGE, "true"],
                check=True,
                capture_output=True,
            )
        finally:
            subprocess.run(["docker", "network", "rm", name], check=True, capture_output=True)


def test_requests_in_flight_survive_docker_network_changes(ui: Ui, slow_url: str) -> None:
    """More requests to one host than Chromium opens connections to it (6) wait in its socket
    pool; an address change on the host flushes that pool with ``ERR_NETWORK_CHANGED``
    (a page's many chunks at load, in the tests' full runs)."""
    ui.go("/login")
    stop = threading.Event()
    flipper = threading.Thread(target=flip_networks, args=(stop,), daemon=True)
    flipper.start()
    try:
        answers = ui.page.evaluate(
            """async ([url, n]) => Promise.all([...Array(n).keys()].map((i) =>
                fetch(url + '?' + i).then((r) => r.text()).catch((e) => 'failed: ' + e)))""",
            [slow_url, REQUESTS],
        )
    finally:
        stop.set()
        flipper.join(timeout=60)
    assert answers == ["done"] * REQUESTS
