"""Moorage supervises its Caddy (SPEC section 12): killed, it is started again with the
routes the database holds, including a change made while it was down."""

from __future__ import annotations

import os
import signal

import httpx

from tests.conftest import Server
from tests.integration.helpers import deploy
from tests.proxy.conftest import through_proxy, wait_for, web_workload


def test_killed_caddy_comes_back_with_the_same_routes_and_the_changes_made_meanwhile(
    proxy_server: Server, proxy_project: str
) -> None:
    w = web_workload(proxy_server, proxy_project)
    assert deploy(proxy_server.operator, w["id"])["status"] == "succeeded"
    first = [{"host": "before.example.internal", "port": 8080, "tls": "off"}]
    r = proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=first)
    assert r.status_code == 200, r.text
    client = httpx.Client(timeout=10)

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
    client.close()
    assert (
        proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=[]).status_code == 200
    )
