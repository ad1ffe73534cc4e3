"""Zero-downtime routing (SPEC section 12): a client looping on the domain through Caddy
while the workload deploys a new version, fails to deploy a broken one and restores a
snapshot sees no failed request, and never the broken version's body."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Server, create_workload, unique
from tests.integration.helpers import containers, deploy, wait_deployment, wait_until
from tests.proxy.conftest import through_proxy, wait_for, web_workload

# One worker runs every proxy test: they share one Caddy on the fixed ports pebble
# validates on (58001/58002), which two workers cannot both hold.
pytestmark = pytest.mark.xdist_group("proxy")

HOST = "zero.example.internal"
MAX_REQUESTS = 20000
MAX_SECONDS = 400.0
GOOD = {"hello from v1\n", "hello from v2\n"}


class Looper:
    """GETs the domain over and over (bounded in count and time), keeping every answer
    that is not a 200 with a good body."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self.count = 0
        self.bodies: dict[str, int] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        # A connection per request: Caddy closes idle keep-alive connections when it
        # loads a config (each switch), and a request sent on one at that instant is lost
        # to the race every HTTP client must retry (RFC 9112 section 9.3.1); that is the
        # client's part, not the routing's, so this loop does not measure it.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=45, limits=limits) as client:
            while not self._stop.is_set() and self.count < MAX_REQUESTS:
                if time.monotonic() > deadline:
                    self.failures.append("the loop ran out of time")
                    return
                try:
                    r = through_proxy(client, self.host, https=False)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                finally:
                    self.count += 1
                self.bodies[r.text] = self.bodies.get(r.text, 0) + 1
                if r.status_code != 200 or r.text not in GOOD:
                    self.failures.append(f"{r.status_code} {r.text[:80]!r}")

    def __enter__(self) -> Looper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def seen(self, body: str) -> bool:
        return self.bodies.get(body, 0) > 0


def wait_routed(host: str) -> None:
    """Wait until the domain answers v1 through Caddy (its route is loaded)."""
    with httpx.Client(timeout=10) as client:

        def routed() -> bool:
            try:
                return through_proxy(client, host, https=False).text == "hello from v1\n"
            except httpx.HTTPError:
                return False  # the route is being loaded

        wait_for(routed, 30, "the route")


def _restore(server: Server, w: dict[str, Any], sid: str) -> dict[str, Any]:
    r = server.admin.post(  # a restore replaces data: admin only
        f"/api/workloads/{w['id']}/snapshots/{sid}/restore",
        headers={"X-Confirm-Restore": w["name"]},
    )
    assert r.status_code == 202, r.text
    url = f"/api/workloads/{w['id']}/restores/{r.json()['id']}"
    wait_until(lambda: server.operator.get(url).json()["status"] != "running", 120, "the restore")
    return dict(server.operator.get(url).json())


def test_no_failed_request_through_deploy_failed_deploy_and_restore(
    proxy_server: Server, proxy_project: str
) -> None:
    api = proxy_server.operator
    w = web_workload(proxy_server, proxy_project, health={"http": "/", "grace_seconds": 0})
    volumes = [{"name": "data", "scope": "stage", "source": unique("zd"), "target": "/data"}]
    assert api.put(f"/api/workloads/{w['id']}/volumes", json=volumes).status_code == 200
    assert deploy(api, w["id"])["status"] == "succeeded"
    r = api.put(
        f"/api/workloads/{w['id']}/domains", json=[{"host": HOST, "port": 8080, "tls": "off"}]
    )
    assert r.status_code == 200, r.text
    wait_routed(HOST)
    r = api.post(f"/api/workloads/{w['id']}/snapshots", json={"mode": "stop"})
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    wait_until(
        lambda: api.get(f"/api/workloads/{w['id']}/snapshots/{sid}").json()["status"] == "ready",
        60,
        "the snapshot",
    )
    with Looper() as loop:
        wait_for(lambda: loop.count > 20, 30, "the loop to run")
        # 1. a new version: started beside the old one, switched to once healthy
        patch = {"config": {"image": "moorage-test/httpd:2"}}
        assert api.patch(f"/api/workloads/{w['id']}", json=patch).status_code == 200
        assert deploy(api, w["id"])["status"] == "succeeded"
        wait_for(lambda: loop.seen("hello from v2\n"), 30, "v2 through the proxy")
        # 2. a broken version: it answers, but fails its health check; it never gets a request
        broken = {
            "config": {
                "command": [
                    "sh",
                    "-c",
                    "echo broken > /www/index.html; exec httpd -f -p 8080 -h /www",
                ],
                "health": {"http": "/missing", "timeout_seconds": 4, "grace_seconds": 0},
            }
        }
        assert api.patch(f"/api/workloads/{w['id']}", json=broken).status_code == 200
        failed = deploy(api, w["id"])
        assert failed["status"] == "failed", failed["log"]
        # 3. a restore: the container stops while the volume is swapped; Caddy holds requests
        done = _restore(proxy_server, w, sid)
        assert done["status"] == "succeeded", done
        after = loop.count
        wait_for(lambda: loop.count > after + 20, 60, "answers after the restore")
    assert loop.failures == [], loop.failures[:10]
    assert not loop.seen("broken\n")
    assert set(loop.bodies) <= GOOD
    assert loop.count > 100
    assert api.put(f"/api/workloads/{w['id']}/domains", json=[]).status_code == 200


def _stack(image: str, *, broken: bool = False) -> str:
    """A one-service stack on a port the engine picks; ``broken`` answers, but fails its
    health check."""
    command = (
        '["sh", "-c", "echo broken > /www/index.html; exec httpd -f -p 8080 -h /www"]'
        if broken
        else '["httpd", "-f", "-p", "8080", "-h", "/www"]'
    )
    probe = "/missing" if broken else "/"
    return (
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        f"    command: {command}\n"
        "    ports: ['127.0.0.1::8080']\n"
        "    healthcheck:\n"
        f'      test: ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:8080{probe}"]\n'
        "      interval: 1s\n"
        "      retries: 2\n"
    )


def test_a_compose_deploy_holds_requests_and_never_routes_a_failing_candidate(
    proxy_server: Server, proxy_project: str
) -> None:
    """A routed stack service rolls out beside its running container: the proxy switches
    once the new one settled, and a failing candidate is removed without ever getting a
    request; a client looping on the domain sees no failed request and never its body."""
    host = "stack.zero.example.internal"
    api = proxy_server.operator
    w = create_workload(
        proxy_server,
        proxy_project,
        kind="compose",
        config={"compose": _stack("moorage-test/httpd:1")},
    )
    assert deploy(api, w["id"])["status"] == "succeeded"
    domain = [{"host": host, "port": 8080, "service": "web", "tls": "off"}]
    r = api.put(f"/api/workloads/{w['id']}/domains", json=domain)
    assert r.status_code == 200, r.text
    wait_routed(host)
    with Looper(host) as loop:
        wait_for(lambda: loop.count > 20, 30, "the loop to run")
        patch = {"config": {"compose": _stack("moorage-test/httpd:2")}}
        assert api.patch(f"/api/workloads/{w['id']}", json=patch).status_code == 200
        done = deploy(api, w["id"])
        assert done["status"] == "succeeded", done["log"]
        assert "beside 1 running" in done["log"] and "switched to" in done["log"]
        wait_for(lambda: loop.seen("hello from v2\n"), 30, "v2 through the proxy")
        broken = {"config": {"compose": _stack("moorage-test/httpd:2", broken=True)}}
        assert api.patch(f"/api/workloads/{w['id']}", json=broken).status_code == 200
        failed = deploy(api, w["id"])
        assert failed["status"] == "failed", failed["log"]
        assert "the running version keeps serving" in failed["log"]
        after = loop.count
        wait_for(lambda: loop.count > after + 20, 60, "answers after the failed deploy")
    running = containers(w["id"], all_states=True)
    assert len(running) == 1, running  # the old one removed, the failed candidate too
    assert loop.failures == [], loop.failures[:10]
    assert not loop.seen("broken\n")
    assert loop.bodies.get("hello from v2\n", 0) > 0
    assert api.put(f"/api/workloads/{w['id']}/domains", json=[]).status_code == 200


def _pinned_stack(image: str, name: str, version: int) -> str:
    """A routed ``web`` with a ``container_name`` (it cannot run twice, so it is recreated
    in place) beside a ``slow`` service that takes a few seconds to turn healthy each time
    it is recreated (its env changes with ``version``), so the deploy settles long after
    ``web`` is up again."""
    return (
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        f"    container_name: {name}\n"
        '    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
        "    ports: ['127.0.0.1::8080']\n"
        "  slow:\n"
        "    image: moorage-test/httpd:1\n"
        f"    environment: {{V: '{version}'}}\n"
        '    command: ["sh", "-c", "sleep 8; touch /tmp/ready; exec sleep 3600"]\n'
        "    healthcheck:\n"
        '      test: ["CMD", "test", "-f", "/tmp/ready"]\n'
        "      interval: 1s\n"
        "      retries: 30\n"
    )


def test_a_stack_service_recreated_in_place_is_routed_to_its_new_container_at_once(
    proxy_server: Server, proxy_project: str
) -> None:
    """A routed service that cannot run twice is recreated in place: its route follows the
    new container as soon as Compose started it, while the rest of the stack still
    settles. Before, the route stayed on the old, removed container until the deploy ended,
    and a stack that settles slower than Caddy holds a request gave 502s."""
    host = "pinned.zero.example.internal"
    api = proxy_server.operator
    name = unique("pinned")
    w = create_workload(
        proxy_server,
        proxy_project,
        kind="compose",
        config={"compose": _pinned_stack("moorage-test/httpd:1", name, 1)},
    )
    assert deploy(api, w["id"])["status"] == "succeeded"
    domain = [{"host": host, "port": 8080, "service": "web", "tls": "off"}]
    assert api.put(f"/api/workloads/{w['id']}/domains", json=domain).status_code == 200
    wait_routed(host)
    patch = {"config": {"compose": _pinned_stack("moorage-test/httpd:2", name, 2)}}
    assert api.patch(f"/api/workloads/{w['id']}", json=patch).status_code == 200
    r = api.post(f"/api/workloads/{w['id']}/deploy")
    assert r.status_code == 202, r.text
    deployment = r.json()["id"]
    with httpx.Client(timeout=45) as client:

        def v2_answers() -> bool:
            try:
                return through_proxy(client, host, https=False).text == "hello from v2\n"
            except httpx.HTTPError:
                return False

        wait_for(v2_answers, 60, "v2 through the proxy")
    # v2 answered while the stack was still settling (its slow service needs 8 s).
    during = api.get(f"/api/workloads/{w['id']}/deployments/{deployment}").json()
    assert during["status"] == "running", during["log"]
    done = wait_deployment(api, w["id"], deployment)
    assert done["status"] == "succeeded", done["log"]
    with httpx.Client(timeout=10) as client:
        assert through_proxy(client, host, https=False).text == "hello from v2\n"
    assert api.put(f"/api/workloads/{w['id']}/domains", json=[]).status_code == 200
