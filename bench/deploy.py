"""Image deploy through Moorage vs the same ``docker run`` + wait-healthy by a plain script.

Budget (SPEC section 8): Moorage / plain <= 1.15. Both start the same local
image the same way (docker-init, a user-defined bridge network with a DNS alias,
a published loopback port) and wait for the same HTTP answer.
"""

from __future__ import annotations

import statistics
import subprocess
import time

import httpx

from bench.server import image_workload, running_server
from tests.conftest import free_port

ROUNDS = 5
IMAGE = "moorage-test/httpd:1"
BUDGET = 1.15
NETWORK = "moorage-bench-plain"


def wait_http(port: int) -> None:
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def plain_once(port: int) -> float:
    start = time.perf_counter()
    cid = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--init",
            "-p",
            f"127.0.0.1:{port}:8080",
            "--network",
            NETWORK,
            "--network-alias",
            "web",
            "--restart",
            "unless-stopped",
            "--label",
            "moorage.bench=1",
            IMAGE,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    wait_http(port)
    took = time.perf_counter() - start
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=True)
    return took


def moorage_once(client: httpx.Client, wid: str) -> float:
    start = time.perf_counter()
    did = client.post(f"/api/workloads/{wid}/deploy").json()["id"]
    while True:
        d = client.get(f"/api/workloads/{wid}/deployments/{did}").json()
        if d["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    took = time.perf_counter() - start
    assert d["status"] == "succeeded", d["log"]
    return took


def run() -> None:
    subprocess.run(["scripts/docker.sh"], check=True)
    subprocess.run(["scripts/test-images.sh"], check=True)
    subprocess.run(["docker", "network", "create", NETWORK], capture_output=True)
    try:
        plain = [plain_once(free_port()) for _ in range(ROUNDS)]
    finally:
        subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)
    with running_server() as (client, _pid):
        client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
        ours = []
        for i in range(ROUNDS):
            # A fresh workload each round, so every deploy starts a container from nothing.
            port = free_port()
            config = {
                "image": IMAGE,
                "ports": [{"container": 8080, "host": port}],
                "health": {"http": "/", "interval_seconds": 0.05},
            }
            wid = image_workload(client, f"d{i}", config)
            ours.append(moorage_once(client, wid))
            client.delete(f"/api/workloads/{wid}")
    p, m = statistics.median(plain), statistics.median(ours)
    print(f"docker run + wait healthy: median {p * 1000:.0f} ms over {ROUNDS}")
    print(f"moorage deploy:            median {m * 1000:.0f} ms over {ROUNDS}")
    print(f"ratio {m / p:.2f} (budget {BUDGET})")
