"""Moorage supervises its Caddy (SPEC section 12): killed, it is started again with the
routes the database holds, including a change made while it was down."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, admin_api, free_port, start_server, stop_server
from tests.integration.helpers import deploy
from tests.proxy.conftest import through_proxy, wait_for, web_workload

# One worker runs every proxy test: they share one Caddy on the fixed ports pebble
# validates on (58001/58002), which two workers cannot both hold.
pytestmark = pytest.mark.xdist_group("proxy")


def test_killed_caddy_comes_back_with_the_same_routes_and_the_changes_made_meanwhile(
    proxy_server: Server, proxy_project: str, request: pytest.FixtureRequest
) -> None:
    w = web_workload(proxy_server, proxy_project)
    assert deploy(proxy_server.operator, w["id"])["status"] == "succeeded"
    first = [{"host": "before.example.internal", "port": 8080, "tls": "off"}]
    r = proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=first)
    assert r.status_code == 200, r.text
    client = httpx.Client(timeout=10)
    request.addfinalizer(client.close)  # closed on a failure too: no socket left to the GC

    def answers(host: str) -> bool:
        try:
            return through_proxy(client, host, https=False).text == "hello from v1\n"
        except httpx.HTTPError:
            return False

    wait_for(lambda: answers("before.example.internal"), 30, "the first route")
    status = proxy_server.viewer.get("/api/proxy").json()
    assert status["running"] and status["pid"], status
    starts = status["starts"]
    os.kill(status["pid"], signal.SIGKILL)
    # Changed while Caddy is down (or being started again): the database has it.
    second = [*first, {"host": "during.example.internal", "port": 8080, "tls": "off"}]
    r = proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=second)
    assert r.status_code == 200, r.text
    back = wait_for(
        lambda: (
            (s := proxy_server.viewer.get("/api/proxy").json())["starts"] > starts
            and s["running"]
            and s
        ),
        30,
        "Caddy started again",
    )
    assert back["pid"] != status["pid"]
    wait_for(lambda: answers("before.example.internal"), 30, "the old route after the restart")
    wait_for(lambda: answers("during.example.internal"), 30, "the route added while it was down")
    assert (
        proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=[]).status_code == 200
    )


def test_a_caddy_left_by_a_killed_moorage_is_stopped_by_the_next_one(
    tmp_path: Path, parts: dict[str, str]
) -> None:
    admin_port = free_port()
    env = {
        "MOORAGE_PROXY": "caddy",
        "MOORAGE_PROXY_HTTP_ADDR": f"127.0.0.1:{free_port()}",
        "MOORAGE_PROXY_HTTPS_ADDR": f"127.0.0.1:{free_port()}",
        "MOORAGE_PROXY_ADMIN_ADDR": f"127.0.0.1:{admin_port}",
    }
    data_dir = tmp_path / "var"
    proc, url, server_env = start_server(data_dir, env)
    try:
        token = admin_api(url, server_env)
        orphan = wait_for(lambda: token.get("/api/proxy").json()["pid"], 30, "Caddy running")
    finally:
        proc.kill()  # no shutdown: its Caddy (a session of its own) stays
        proc.wait()
    assert pid_alive(orphan)
    proc, url, server_env = start_server(data_dir, env)
    try:
        token = admin_api(url, server_env)
        status = wait_for(
            lambda: (s := token.get("/api/proxy").json())["running"] and s, 30, "a new Caddy"
        )
        assert status["pid"] != orphan
        wait_for(lambda: not pid_alive(orphan), 30, "the left-over Caddy to stop")
    finally:
        stop_server(proc)
    wait_for(lambda: not pid_alive(status["pid"]), 30, "Caddy to stop with its server")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is not running
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"
