"""Caddy loading configs while clients connect (SPEC section 12): every switch of a
zero-downtime deploy is a ``POST /load``, and each load replaced Caddy's listening
sockets; connections waiting in the old one's accept queue were reset (CI, stop 26:
``Connection reset by peer`` in the zero-downtime loop). A Caddy that Moorage starts
loses none of them."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from moorage.proxy.caddy import CaddyProcess
from moorage.proxy.listeners import MIGRATE_REQ
from tests.conftest import free_port

# The proxy tests' worker: the sysctl is per network namespace, shared with its Caddy.
pytestmark = pytest.mark.xdist_group("proxy")

LOADS = 100
CLIENTS = 4


def _config(admin: str, port: int, n: int) -> dict[str, Any]:
    route = {"handle": [{"handler": "static_response", "body": f"config {n}\n"}]}
    server = {"listen": [f"127.0.0.1:{port}"], "routes": [route]}
    return {"admin": {"listen": admin}, "apps": {"http": {"servers": {"s": server}}}}


def test_no_connection_is_lost_while_caddy_loads_configs(tmp_path: Path) -> None:
    binary = shutil.which("caddy")
    assert binary is not None, "scripts/test.sh installs Caddy"
    if MIGRATE_REQ.exists():
        try:  # as a fresh host has it, so the start below is what turns it on
            MIGRATE_REQ.write_text("0\n")
        except OSError:
            pass
    admin, port = f"127.0.0.1:{free_port()}", free_port()
    caddy = CaddyProcess(binary, admin, tmp_path / "caddy")
    caddy.start(_config(admin, port, 0))
    stop = threading.Event()
    failures: list[str] = []
    answers = [0]

    def client() -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # a connection per request
        with httpx.Client(timeout=10, limits=limits) as http:
            while not stop.is_set():
                try:
                    r = http.get(f"http://127.0.0.1:{port}/")
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if r.status_code != 200 or not r.text.startswith("config "):
                    failures.append(f"{r.status_code} {r.text[:80]!r}")
                answers[0] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        for n in range(1, LOADS + 1):
            caddy.load(_config(admin, port, n))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        caddy.stop()
    assert failures == [], failures[:5]
    assert answers[0] > LOADS
