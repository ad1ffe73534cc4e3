"""Routing through Moorage's Caddy vs straight to the container's published port, and the
requests that fail while the workload deploys, fails a deploy and restores (SPEC 12).

Both legs GET ``/`` of the same container (``moorage-test/httpd:1``) over plain HTTP with
``THREADS`` keep-alive clients, ``REQUESTS`` requests each: the direct leg to the published
loopback port, the proxy leg to Caddy's HTTP address with the domain as Host. The ratio is
Caddy's cost, not Moorage's (Moorage is not on the request path). Then one client loops on
the domain (a connection per request) while the workload deploys v2, fails a broken
deploy, and restores a snapshot; every answer that is not a 200 with a good body counts
as failed (target: 0). Bounded in count and time; loopback only. Nothing here asserts.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from typing import Any

import httpx

from bench.server import running_server
from tests.conftest import free_port

THREADS = 4
REQUESTS = 1500
HOST = "bench.example.internal"
GOOD = {b"hello from v1\n", b"hello from v2\n"}
LOOP_MAX = 20000
LOOP_SECONDS = 300.0


def _leg(url: str, host: str | None) -> tuple[float, float]:
    """(requests per second, p99 seconds) of THREADS clients x REQUESTS GETs of ``url``."""
    latencies: list[float] = []
    lock = threading.Lock()
    headers = {"Host": host} if host else {}

    def client() -> None:
        mine = []
        with httpx.Client(timeout=10) as c:
            for _ in range(REQUESTS):
                start = time.perf_counter()
                r = c.get(url, headers=headers)
                mine.append(time.perf_counter() - start)
                r.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, statistics.quantiles(latencies, n=100)[98]


def _wait(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.2)


def _deploy(client: httpx.Client, wid: str) -> str:
    did = client.post(f"/api/workloads/{wid}/deploy").json()["id"]
    url = f"/api/workloads/{wid}/deployments/{did}"
    _wait(lambda: client.get(url).json()["status"] in ("succeeded", "failed"), 180)
    return str(client.get(url).json()["status"])


def _changes(client: httpx.Client, wid: str, http: str) -> tuple[int, int]:
    """(requests, failed) of a client looping on the domain through three changes."""
    counts = {"all": 0, "failed": 0}
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + LOOP_SECONDS
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=45, limits=limits) as c:
            while not stop.is_set() and counts["all"] < LOOP_MAX and time.monotonic() < deadline:
                counts["all"] += 1
                try:
                    r = c.get(http, headers={"Host": HOST})
                    if r.status_code != 200 or r.content not in GOOD:
                        counts["failed"] += 1
                except httpx.HTTPError:
                    counts["failed"] += 1

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        client.patch(f"/api/workloads/{wid}", json={"config": {"image": "moorage-test/httpd:2"}})
        print(f"  deploy v2: {_deploy(client, wid)}")
        broken = {"config": {"health": {"http": "/missing", "timeout_seconds": 4}}}
        client.patch(f"/api/workloads/{wid}", json=broken)
        print(f"  broken deploy: {_deploy(client, wid)}")
        sid = client.post(f"/api/workloads/{wid}/snapshots", json={"mode": "none"}).json()["id"]
        snap = f"/api/workloads/{wid}/snapshots/{sid}"
        _wait(lambda: client.get(snap).json()["status"] != "capturing", 60)
        rid = client.post(f"{snap}/restore", headers={"X-Confirm-Restore": "web"}).json()["id"]
        restore = f"/api/workloads/{wid}/restores/{rid}"
        _wait(lambda: client.get(restore).json()["status"] != "running", 180)
        print(f"  restore: {client.get(restore).json()['status']}")
    finally:
        stop.set()
        thread.join(60)
    return counts["all"], counts["failed"]


def run() -> None:
    subprocess.run(["scripts/docker.sh"], check=True)
    subprocess.run(["scripts/test-images.sh"], check=True)
    subprocess.run(["scripts/caddy.sh"], check=True, capture_output=True)
    http_port = free_port()
    env = {
        "MOORAGE_PROXY": "caddy",
        "MOORAGE_PROXY_HTTP_ADDR": f"127.0.0.1:{http_port}",
        "MOORAGE_PROXY_HTTPS_ADDR": f"127.0.0.1:{free_port()}",
        "MOORAGE_PROXY_ADMIN_ADDR": f"127.0.0.1:{free_port()}",
    }
    with running_server(env=env) as (client, _pid):
        client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
        config = {
            "image": "moorage-test/httpd:1",
            "ports": [{"container": 8080}],
            "health": {"http": "/", "interval_seconds": 0.05, "grace_seconds": 0},
        }
        body = {"name": "web", "kind": "image", "project": "bench", "stage": "production"}
        wid = client.post("/api/workloads", json={**body, "config": config}).json()["id"]
        volumes = [{"name": "data", "scope": "stage", "source": "web", "target": "/data"}]
        client.put(f"/api/workloads/{wid}/volumes", json=volumes).raise_for_status()
        if _deploy(client, wid) != "succeeded":
            raise RuntimeError("the first deploy failed")
        direct = client.get(f"/api/workloads/{wid}/deployments").json()["items"][0]
        direct_url = direct["artifact"]["urls"][0]
        domains = [{"host": HOST, "port": 8080, "tls": "off"}]
        client.put(f"/api/workloads/{wid}/domains", json=domains).raise_for_status()
        proxy_url = f"http://127.0.0.1:{http_port}/"

        def routed() -> bool:
            try:
                return httpx.get(proxy_url, headers={"Host": HOST}).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(routed, 30)
        d_rps, d_p99 = _leg(direct_url, None)
        p_rps, p_p99 = _leg(proxy_url, HOST)
        print(f"direct to {direct_url}: {d_rps:.0f} req/s, p99 {d_p99 * 1000:.1f} ms")
        print(f"through Caddy:            {p_rps:.0f} req/s, p99 {p_p99 * 1000:.1f} ms")
        print(f"proxy/direct: req/s x{p_rps / d_rps:.2f}, p99 x{p_p99 / d_p99:.2f}")
        total, failed = _changes(client, wid, proxy_url)
        print(f"during deploy, failed deploy and restore: {failed} of {total} requests failed")
