"""Answer time of one webhook bound to 200 workloads, beside an unbound hook in the same run.

Budget (SPEC section 8): the bound hook answers in <= 100 ms. The hook queues the
deploys and answers; it never waits for one.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from bench.server import image_workload, running_server

WORKLOADS = 200
ROUNDS = 5
BUDGET_MS = 100.0
# Deploys that end at once and leave nothing running: the bench measures the answer only.
QUICK = {
    "image": "moorage-test/httpd:1",
    "command": ["sh", "-c", "exit 0"],
    "health": {"grace_seconds": 0},
}


def hook_ms(caller: httpx.Client, url: str, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        r = caller.post(
            url,
            content=b'{"ref": "refs/heads/main"}',
            headers={"X-Moorage-Delivery": f"bench-{time.time_ns()}-{i}"},
        )
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 202, r.text
    return times


def bound_hook(client: httpx.Client, name: str, config: dict[str, Any]) -> dict[str, Any]:
    """A webhook trigger (no rate limit to speak of) bound to ``WORKLOADS`` new workloads
    of ``config`` in project ``bench``; the trigger as the API answers it."""
    hook: dict[str, Any] = client.post(
        "/api/triggers",
        json={"kind": "webhook", "name": name, "config": {"rate_limit_per_minute": 10000}},
    ).json()
    for i in range(WORKLOADS):
        wid = image_workload(client, f"{name}{i}", config)
        client.post(f"/api/workloads/{wid}/triggers", json={"trigger_id": hook["id"]})
    return hook


def run() -> None:
    with running_server() as (client, _pid):
        client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
        unbound = client.post(
            "/api/triggers",
            json={"kind": "webhook", "name": "unbound", "config": {"rate_limit_per_minute": 10000}},
        )
        bound = bound_hook(client, "f", QUICK)
        bound_id = bound["id"]
        with httpx.Client(timeout=30) as caller:  # one connection, like a real sender's
            hook_ms(caller, unbound.json()["url"], 3)  # warm up
            plain = hook_ms(caller, unbound.json()["url"], 20)
            fanned = hook_ms(caller, bound["url"], ROUNDS)
        queued = len(client.get(f"/api/triggers/{bound_id}/deliveries").json()["items"])
    p, f = statistics.median(plain), statistics.median(fanned)
    print(f"unbound hook: median {p:.1f} ms over {len(plain)}")
    print(
        f"hook bound to {WORKLOADS} workloads: median {f:.1f} ms, max {max(fanned):.1f} ms "
        f"over {ROUNDS} ({queued} deliveries); budget {BUDGET_MS:.0f} ms; "
        f"ratio {f / BUDGET_MS:.2f}"
    )
