"""Deploys of one workload never overlap; deploys of different workloads do; and no pair of
lock-taking routes (every route that changes a workload, SPEC section 9) deadlocks. Each
probe has a real timer that fails the test when it fires."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Api, Server, create_workload, unique
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
        t.join(PROBE_SECONDS)  # a queue call waits while a deploy holds the workload's lock
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


# --- the deadlock probe ------------------------------------------------------------------
# Every route that takes the workload's lock (services.guard), run against each other two at
# a time on one deployed workload; each waits for the work it starts (a deploy, a capture, a
# restore) to end. A pair still running after PROBE_SECONDS on a real timer fails the test.

QUICK = {"image": "moorage-test/httpd:1", "health": {"grace_seconds": 1}}
GONE = 404  # the other route of the pair deleted the workload first
REFUSALS = {"already_bound", "restore_running", "snapshot_busy", "not_ready", "volume_mismatch"}


@dataclass
class Probe:
    """A deployed workload with a volume and a ready snapshot, and what the routes need."""

    server: Server
    workload: dict[str, Any]
    source: str  # a deployed workload of the same project to promote from
    snapshot: str
    archive: bytes

    @property
    def url(self) -> str:
        return f"/api/workloads/{self.workload['id']}"


def make_probe(server: Server, project: str, source: str) -> Probe:
    w = create_workload(server, project, config=QUICK)
    url = f"/api/workloads/{w['id']}"
    r = server.operator.put(
        f"{url}/volumes",
        json=[{"name": "data", "scope": "stage", "source": unique("d"), "target": "/data"}],
    )
    assert r.status_code == 200, r.text
    assert (
        wait_deployment(server.operator, w["id"], queue(server.operator, w["id"]))["status"]
        == "succeeded"
    )
    probe = Probe(server, w, source, "", b"")
    probe.snapshot = capture(probe)
    probe.archive = server.admin.get(f"{url}/snapshots/{probe.snapshot}/archive").content
    return probe


def answered(r: httpx.Response, *ok: int) -> httpx.Response:
    """A 2xx, a 404 (deleted meanwhile) or a refusal that is about state, never a wait
    for the lock that ran out (409 ``workload_busy``) or a crash."""
    if r.status_code in ok or r.status_code == GONE:
        return r
    assert r.status_code in (409, 422), r.text
    assert r.json()["error"]["code"] in REFUSALS, r.text
    return r


def until(probe: Probe, path: str, done: set[str]) -> None:
    """Wait for what a route started to end (or its workload to be deleted); an
    AssertionError when it has not ended by the probe's deadline."""
    deadline = time.monotonic() + PROBE_SECONDS
    status = None
    while time.monotonic() < deadline:
        got = probe.server.admin.get(path)
        if got.status_code == GONE:
            return
        status = got.json()["status"]
        if status in done:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} still {status!r} after {PROBE_SECONDS} s")


def capture(probe: Probe) -> str:
    r = answered(probe.server.operator.post(f"{probe.url}/snapshots", json={"mode": "none"}), 202)
    if r.status_code != 202:
        return ""
    sid = str(r.json()["id"])
    until(probe, f"{probe.url}/snapshots/{sid}", {"ready", "failed"})
    return sid


def run_route(probe: Probe, name: str) -> None:
    """Run one lock-taking route to its end."""
    op, admin, url = probe.server.operator, probe.server.admin, probe.url
    if name in ("deploy", "promote"):
        r = (
            op.post(f"{url}/deploy")
            if name == "deploy"
            else op.post(f"{url}/promote-from", json={"source": probe.source})
        )
        if answered(r, 202).status_code == 202:
            until(probe, f"{url}/deployments/{r.json()['id']}", {"succeeded", "failed"})
    elif name in ("reconcile", "stop", "start", "restart"):
        answered(op.post(f"{url}/{name}"), 200)
    elif name == "patch":
        answered(op.patch(url, json={"config": {"stop_timeout": 3}, "keep_last": 5}), 200)
    elif name == "env":
        answered(op.put(f"{url}/env", json={"A": {"value": unique("v"), "secret": False}}), 200)
    elif name == "volumes":
        now = op.get(f"{url}/volumes")
        if now.status_code == 200:
            items = [
                {k: v for k, v in item.items() if k not in ("host_path", "problem")}
                for item in now.json()["items"]
            ]
            answered(op.put(f"{url}/volumes", json=items), 200)
    elif name == "chain":
        answered(op.put(f"{url}/chain", json={"next": [probe.source]}), 200)
    elif name in ("bind", "unbind"):
        inline = {"kind": "webhook", "name": unique("pr"), "config": {}}
        r = answered(op.post(f"{url}/triggers", json={"trigger": inline}), 201)
        if name == "unbind" and r.status_code == 201:
            answered(op.delete(f"{url}/triggers/{r.json()['id']}"), 204)
    elif name == "capture":
        capture(probe)
    elif name == "snapshot_delete":
        sid = capture(probe)
        if sid:
            answered(admin.delete(f"{url}/snapshots/{sid}"), 204)
    elif name == "import":
        headers = {"Content-Type": "application/zstd"}
        answered(admin.post(f"{url}/snapshots/import", content=probe.archive, headers=headers), 201)
    elif name == "restore":
        headers = {"X-Confirm-Restore": probe.workload["name"]}
        r = answered(admin.post(f"{url}/snapshots/{probe.snapshot}/restore", headers=headers), 202)
        if r.status_code == 202:
            until(probe, f"{url}/restores/{r.json()['id']}", {"succeeded", "failed", "rolled_back"})
    elif name == "teardown":
        answered(admin.delete(url, params={"purge_snapshots": "true"}), 204)
    else:
        raise AssertionError(f"no such route {name}")


ROUTES = (
    "deploy",
    "promote",
    "reconcile",
    "stop",
    "start",
    "restart",
    "patch",
    "env",
    "volumes",
    "chain",
    "bind",
    "unbind",
    "capture",
    "snapshot_delete",
    "import",
    "restore",
    "teardown",
)
# Teardown last: it deletes the workload, so the probe makes a new one after each.
PAIRS = sorted(itertools.combinations_with_replacement(ROUTES, 2), key=lambda p: "teardown" in p)
# The 153 pairs run in parts, each on a workload of its own, so the workers share them
# (one part took 4 minutes of one worker): a deadlock between two routes of one workload
# shows in whichever part holds the pair.
PARTS = 4


@pytest.mark.parametrize("part", range(PARTS))
def test_no_pair_of_lock_taking_routes_deadlocks(server: Server, project: str, part: int) -> None:
    source = create_workload(server, project, config=QUICK)["id"]
    assert (
        wait_deployment(server.operator, source, queue(server.operator, source))["status"]
        == "succeeded"
    )
    probe = make_probe(server, project, source)
    for first, second in PAIRS[part::PARTS]:
        errors: list[BaseException] = []

        def run(name: str, current: Probe = probe) -> None:
            try:
                run_route(current, name)
            except (AssertionError, httpx.HTTPError) as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in (first, second)]
        deadline = time.monotonic() + PROBE_SECONDS
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [n for n, t in zip((first, second), threads, strict=True) if t.is_alive()]
        assert not stuck, f"{first} + {second}: {stuck} still waiting after {PROBE_SECONDS} s"
        assert not errors, (first, second, errors)
        if "teardown" in (first, second):
            probe = make_probe(server, project, source)


def test_a_route_still_running_at_the_deadline_fails_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe's wait can fail: a deploy that never ends is an error, not a pass."""

    class Stuck:
        def get(self, path: str) -> httpx.Response:
            return httpx.Response(200, json={"status": "running"})

    stuck = Server.__new__(Server)
    stuck.admin = Stuck()  # type: ignore[assignment]
    monkeypatch.setattr(sys.modules[__name__], "PROBE_SECONDS", 0.5)
    probe = Probe(stuck, {"id": "wl_x", "name": "x"}, "", "", b"")
    with pytest.raises(AssertionError, match="still 'running'"):
        until(probe, "/api/workloads/wl_x/deployments/dp_x", {"succeeded", "failed"})
