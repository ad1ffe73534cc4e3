"""``GET /api/workloads`` while a webhook fans out to 200 workloads every 2 s.

Readers loop on the list, first on a quiet server, then while a hook bound to every
workload fires again and again and the deploy workers run what it queued. The readers
run in a process of their own, so the hook's caller does not wait for their GIL. Printed:
requests/s and p99 of the list in both phases and their ratios, and the hook's answer
time against its budget (SPEC section 8: <= 100 ms); then the same with the reads paced
at 100 requests/s in all (an open loop: a busy dashboard, not a flood).

Two fan-outs, each with both read loads: deploys that run a container (Docker's work
dominates: on two cores the engine takes as much CPU as Moorage), and deploys that end at
the engine's first answer (an image on an unreachable registry: no container, so the
deploys commit as fast as Moorage can run them, and what is left is Moorage's own cost).
Nothing here asserts.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from typing import Any

import httpx

from bench.fanout import QUICK, bound_hook, hook_ms
from bench.server import running_server

WORKLOADS = 200
READERS = 8
QUIET_SECONDS = 10.0
LOADED_SECONDS = 20.0
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


def loaded(
    readers: Any, url: str, token: str, hook_url: str, rate: float | None
) -> tuple[list[float], list[float]]:
    """(list latencies, hook answers), both ms, of ``LOADED_SECONDS`` of reads at
    ``rate`` (None: closed loop) while the hook fires every ``FIRE_EVERY`` s."""
    reading = readers.apply_async(read_for, (url, token, LOADED_SECONDS, rate))
    answers: list[float] = []
    fire_for(hook_url, LOADED_SECONDS, answers)
    return reading.get(), answers


def drain(client: httpx.Client, timeout: float) -> None:
    """Wait until no deploy is queued or running: a phase starts on an idle queue. A
    backlog of container deploys (Docker starts a few containers a second on two cores)
    may outlast ``timeout``; what is left, and how fast it went, is printed then."""
    deadline = time.monotonic() + timeout
    first: int | None = None
    busy: list[str] = []
    while time.monotonic() < deadline:
        items = client.get("/api/workloads").json()["items"]
        busy = [
            w["last_deployment"]["status"]
            for w in items
            if (w.get("last_deployment") or {}).get("status") in ("queued", "running")
        ]
        if not busy:
            return
        first = len(busy) if first is None else first
        time.sleep(1.0)
    print(
        f"(the deploy queue did not drain in {timeout:.0f} s: {first} workloads had a deploy "
        f"queued or running, {busy.count('queued')} queued and {busy.count('running')} "
        "running are left; the next phase starts anyway)"
    )


def report(label: str, quiet: list[float], reads: list[float], answers: list[float]) -> None:
    quiet_rps, rps = len(quiet) / QUIET_SECONDS, len(reads) / LOADED_SECONDS
    print(
        f"{label}: {rps:.0f} req/s, median {statistics.median(reads):.1f} ms, "
        f"p99 {p99(reads):.1f} ms (ratios to quiet: req/s {rps / quiet_rps:.2f}, "
        f"p99 {p99(reads) / p99(quiet):.2f}); hook answers: median "
        f"{statistics.median(answers):.1f} ms, max {max(answers):.1f} ms over {len(answers)} "
        f"(budget {HOOK_BUDGET_MS:.0f} ms; ratio {statistics.median(answers) / HOOK_BUDGET_MS:.2f})"
    )


def run() -> None:
    with running_server() as (client, _pid):
        client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
        # Deploys that end at once first: their queue drains in seconds, a backlog of
        # container deploys (Docker starts a few containers a second) would not.
        fanouts = {
            "deploys that end at once": bound_hook(
                client, "n", {**QUICK, "image": "127.0.0.1:1/absent:1"}
            )["url"],
            "container deploys": bound_hook(client, "c", QUICK)["url"],
        }
        url = str(client.base_url).rstrip("/")
        token = client.headers["Authorization"].split()[-1]
        results = []
        with multiprocessing.get_context("fork").Pool(1) as readers:
            readers.apply(read_for, (url, token, 2.0))  # warm up
            quiet = readers.apply(read_for, (url, token, QUIET_SECONDS))
            for kind, hook_url in fanouts.items():
                for rate in (None, PACED_RATE):
                    pace = f"reads paced at {rate:.0f} req/s" if rate else f"{READERS} readers"
                    label = f"{kind}, {pace}"
                    results.append((label, *loaded(readers, url, token, hook_url, rate)))
                    drain(client, 120.0)
    print(
        f"list of {2 * WORKLOADS} workloads, {READERS} readers, quiet: "
        f"{len(quiet) / QUIET_SECONDS:.0f} req/s, median {statistics.median(quiet):.1f} ms, "
        f"p99 {p99(quiet):.1f} ms"
    )
    print(f"under a {WORKLOADS}-way fan-out every {FIRE_EVERY:.0f} s:")
    for label, reads, answers in results:
        report(f"  {label}", quiet, reads, answers)
