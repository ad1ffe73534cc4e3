"""``GET /api/workloads`` with 1,000 workloads: p99 latency and the server's idle RSS.

Budgets (SPEC section 8): p99 <= 30 ms, idle RSS <= 100 MiB. Printed as ratios
against the budget; nothing here asserts, the numbers are for people.
"""

from __future__ import annotations

import statistics
import time

from bench.server import image_workload, rss_mib, running_server

WORKLOADS = 1000
REQUESTS = 300
P99_BUDGET_MS = 30.0
RSS_BUDGET_MIB = 100.0


def run() -> None:
    with running_server() as (client, pid):
        idle = rss_mib(pid)
        client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
        for i in range(WORKLOADS):
            config = {"image": f"example/app:{i}", "ports": [{"container": 8080}]}
            image_workload(client, f"w{i}", config)
        for _ in range(20):
            client.get("/api/workloads")
        samples = []
        for _ in range(REQUESTS):
            start = time.perf_counter()
            r = client.get("/api/workloads")
            samples.append((time.perf_counter() - start) * 1000)
            assert len(r.json()["items"]) == WORKLOADS
        samples.sort()
        p99 = samples[int(len(samples) * 0.99) - 1]
        loaded = rss_mib(pid)
    print(
        f"list {WORKLOADS} workloads: median {statistics.median(samples):.1f} ms, "
        f"p99 {p99:.1f} ms; budget {P99_BUDGET_MS:.0f} ms; ratio {p99 / P99_BUDGET_MS:.2f}"
    )
    print(
        f"server RSS idle {idle:.0f} MiB (ratio {idle / RSS_BUDGET_MIB:.2f} of budget), "
        f"after the run {loaded:.0f} MiB"
    )
