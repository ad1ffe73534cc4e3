"""Deploys of one workload never overlap; deploys of different workloads do; and no pair of
lock-taking entry points (deploy, reconcile, teardown) deadlocks. Each probe has a real timer."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import Api, Server, create_workload
from tests.integration.helpers import wait_deployment

SLOW = {"image": "moorage-test/httpd:1", "health": {"grace_seconds": 2}}
PROBE_SECONDS = 45


def span(d: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(d["started_at"]), datetime.fromisoformat(d["finished_at"])


def queue(api: Api, wid: str) -> str:
    r = api.post(f"/api/workloads/{wid}/deploy")
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_deploys_of_one_workload_run_one_at_a_time(server: Server, project: str) -> None:
    w = create_workload(server, project, config=SLOW)
    ids: list[str] = []
    threads = [
        threading.Thread(target=lambda: ids.append(queue(server.operator, w["id"])))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ids) == 4
    done = [wait_deployment(server.operator, w["id"], i, timeout=90) for i in ids]
    assert [d["status"] for d in done] == ["succeeded"] * 4
    spans = sorted(span(d) for d in done)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two deploys of one workload overlapped: {spans}"


def test_deploys_of_two_workloads_overlap(server: Server, project: str) -> None:
    a = create_workload(server, project, config=SLOW)
    b = create_workload(server, project, config=SLOW)
    da, db = queue(server.operator, a["id"]), queue(server.operator, b["id"])
    sa = span(wait_deployment(server.operator, a["id"], da))
    sb = span(wait_deployment(server.operator, b["id"], db))
    assert sa[0] < sb[1] and sb[0] < sa[1], f"deploys ran one after the other: {sa} {sb}"


def entry(server: Server, name: str, wid: str) -> None:
    """Run one lock-taking entry point to its end."""
    if name == "deploy":
        r = server.operator.post(f"/api/workloads/{wid}/deploy")
        if r.status_code == 404:
            return  # the other entry point deleted the workload first
        did = r.json()["id"]
        deadline = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < deadline:
            got = server.operator.get(f"/api/workloads/{wid}/deployments/{did}")
            if got.status_code == 404 or got.json()["status"] in ("succeeded", "failed"):
                return  # finished, or deleted with its workload by a teardown
            time.sleep(0.2)
    elif name == "reconcile":
        r = server.operator.post(f"/api/workloads/{wid}/reconcile")
        assert r.status_code in (200, 404), r.text
    elif name == "teardown":
        r = server.admin.delete(f"/api/workloads/{wid}")
        assert r.status_code in (204, 404, 409), r.text


PAIRS = [
    ("deploy", "deploy"),
    ("deploy", "reconcile"),
    ("deploy", "teardown"),
    ("reconcile", "reconcile"),
    ("reconcile", "teardown"),
    ("teardown", "teardown"),
]


def test_no_pair_of_lock_taking_entry_points_deadlocks(server: Server, project: str) -> None:
    for first, second in PAIRS:
        w = create_workload(server, project, config=SLOW)
        d = wait_deployment(server.operator, w["id"], queue(server.operator, w["id"]))
        assert d["status"] == "succeeded"
        errors: list[BaseException] = []

        def run(name: str, wid: str = w["id"]) -> None:
            try:
                entry(server, name, wid)
            except (AssertionError, httpx.HTTPError) as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PROBE_SECONDS)
        stuck = [n for n, t in zip((first, second), threads, strict=True) if t.is_alive()]
        assert not stuck, f"{first} + {second}: {stuck} still waiting after {PROBE_SECONDS} s"
        assert not errors, errors
