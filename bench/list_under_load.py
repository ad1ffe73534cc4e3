"""``GET /api/workloads`` while a webhook fans out to 200 workloads every 2 s.

Readers loop on the list, first on a quiet server, then while a hook bound to every
workload fires again and again and the deploy workers run what it queued. The readers
run in a process of their own, so the hook's caller does not wait for their GIL. Printed:
requests/s and p99 of the list in both phases and their ratios, and the hook's answer
time against its budget (SPEC section 8: <= 100 ms); then the same with the reads paced
at 100 requests/s in all (an open loop: a busy dashboard, not a flood). Nothing here
asserts.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time

import httpx

from bench.fanout import QUICK, hook_ms
from bench.server import running_server

WORKLOADS = 200
READERS = 8
QUIET_SECONDS = 10.0
LOADED_SECONDS = 30.0
FIRE_EVERY = 2.0
HOOK_BUDGET_MS = 100.0
PACED_RATE = 100.0  # requests/s of the open-loop phase: a busy dashboard, not a flood


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def read_for(url: str, token: str, seconds: float, rate: float | None = None) -> list[float]:
    """Every reader's latencies (ms) of ``GET /api/workloads`` for ``seconds``: as fast
    as answers come (a closed loop that keeps the server's one event loop saturated), or
    ``rate`` requests/s in all, each reader on its own schedule (an open loop: many UI
    users, not a flood)."""
    samples: list[list[float]] = [[] for _ in range(READERS)]
    deadline = time.monotonic() + seconds
    every = READERS / rate if rate else 0.0

    def reader(mine: list[float]) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            due = time.monotonic()
            while time.monotonic() < deadline:
                start = time.perf_counter()
                r = client.get("/api/workloads")
                mine.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, r.text
                due += every
                time.sleep(max(0.0, due - time.monotonic()))

    threads = [threading.Thread(target=reader, args=(s,)) for s in samples]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for s in samples for x in s]


def fire_for(hook_url: str, seconds: float, answers: list[float]) -> None:
    """Fire the hook every ``FIRE_EVERY`` s for ``seconds``, noting each answer time."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=60) as caller:  # one connection, like a real sender's
        while time.monotonic() < deadline:
            start = time.perf_counter()
            answers.extend(hook_ms(caller, hook_url, 1))
            time.sleep(max(0.0, FIRE_EVERY - (time.perf_counter() - start)))


def run() -> None:
    with running_server() as (client, _pid):
        client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
        hook = client.post(
            "/api/triggers",
            json={"kind": "webhook", "name": "load", "config": {"rate_limit_per_minute": 10000}},
        ).json()
        for i in range(WORKLOADS):
            wid = client.post(
                "/api/workloads",
                json={
                    "name": f"l{i}",
                    "kind": "image",
                    "project": "bench",
                    "stage": "production",
                    "config": QUICK,
                },
            ).json()["id"]
            client.post(f"/api/workloads/{wid}/triggers", json={"trigger_id": hook["id"]})
        url = str(client.base_url).rstrip("/")
        token = client.headers["Authorization"].split()[-1]
        with multiprocessing.get_context("fork").Pool(1) as readers:
            readers.apply(read_for, (url, token, 2.0))  # warm up
            quiet = readers.apply(read_for, (url, token, QUIET_SECONDS))
            loading = readers.apply_async(read_for, (url, token, LOADED_SECONDS))
            answers: list[float] = []
            fire_for(hook["url"], LOADED_SECONDS, answers)
            loaded = loading.get()
            pacing = readers.apply_async(read_for, (url, token, LOADED_SECONDS, PACED_RATE))
            paced_answers: list[float] = []
            fire_for(hook["url"], LOADED_SECONDS, paced_answers)
            paced = pacing.get()
    quiet_rps, loaded_rps = len(quiet) / QUIET_SECONDS, len(loaded) / LOADED_SECONDS
    print(
        f"list of {WORKLOADS} workloads, {READERS} readers, quiet: {quiet_rps:.0f} req/s, "
        f"median {statistics.median(quiet):.1f} ms, p99 {p99(quiet):.1f} ms"
    )
    print(
        f"same, a {WORKLOADS}-way fan-out every {FIRE_EVERY:.0f} s: {loaded_rps:.0f} req/s, "
        f"median {statistics.median(loaded):.1f} ms, p99 {p99(loaded):.1f} ms; "
        f"ratios: req/s {loaded_rps / quiet_rps:.2f}, p99 {p99(loaded) / p99(quiet):.2f}"
    )
    print(
        f"hook answers under that read load: median {statistics.median(answers):.1f} ms, "
        f"max {max(answers):.1f} ms over {len(answers)}; budget {HOOK_BUDGET_MS:.0f} ms; "
        f"ratio {statistics.median(answers) / HOOK_BUDGET_MS:.2f}"
    )
    print(
        f"reads paced at {PACED_RATE:.0f} req/s in all, same fan-out: "
        f"{len(paced) / LOADED_SECONDS:.0f} req/s, median {statistics.median(paced):.1f} ms, "
        f"p99 {p99(paced):.1f} ms; hook answers: median "
        f"{statistics.median(paced_answers):.1f} ms, max {max(paced_answers):.1f} ms over "
        f"{len(paced_answers)}; ratio {statistics.median(paced_answers) / HOOK_BUDGET_MS:.2f}"
    )
