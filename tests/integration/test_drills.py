"""Restore drills (SPEC section 10) through a real server process on the real engine: a good
snapshot passes and sets ``verified_at``; a failing check is ``failed`` with its output;
the live workload's containers and bytes never change; nothing of the sandbox is left
(containers, network, unpacked data), even after a SIGKILL mid-drill; a running drill
does not hold up a deploy; bad input and roles change nothing."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moorage.plugins.spec import drill_prefix
from tests.conftest import (
    Api,
    Server,
    again,
    assert_error,
    start_server,
    stop_server,
    unique,
    wait_faulted,
)
from tests.integration.helpers import crash_server, deploy, get_text, wait_until
from tests.integration.test_clone import make_source
from tests.integration.test_restore import Site, write_tree


@pytest.fixture
def source(server: Server) -> Iterator[Site]:
    project = unique("dr")
    made = make_source(server, project)
    yield made
    server.admin.delete(f"/api/workloads/{made.id}", params={"purge_snapshots": "true"})


def container_ids(workload_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label=moorage.workload={workload_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(out.split())


def sandbox_left(data_dir: Path, drill_id: str) -> list[str]:
    """Whatever of the drill's sandbox still exists: containers, network, unpacked data."""
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=moorage.drill={drill_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    nets = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", f"name={drill_prefix(drill_id)}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    left = [f"container {c}" for c in found] + [f"network {n}" for n in nets]
    if (data_dir / "drills" / drill_id).exists():
        left.append("data")
    return left


def drill(site: Site, sid: str, check: dict[str, Any] | None = None, api: Api | None = None) -> Any:
    body = {"check": check} if check is not None else None
    return (api or site.api).post(f"/api/workloads/{site.id}/snapshots/{sid}/drills", json=body)


def wait_drill(site: Site, sid: str, did: str, timeout: float = 120) -> dict[str, Any]:
    url = f"/api/workloads/{site.id}/snapshots/{sid}/drills/{did}"
    wait_until(lambda: site.api.get(url).json()["status"] != "running", timeout, "the drill")
    return dict(site.api.get(url).json())


def test_a_good_snapshot_passes_and_the_live_workload_is_untouched(
    server: Server, source: Site
) -> None:
    snap = source.snapshot()
    assert snap["verified_at"] is None
    for name, p in source.paths.items():
        write_tree(p, f"new-{name}")
    live = source.trees()
    ids = container_ids(source.id)
    r = drill(source, snap["id"])  # the workload's own health check (http "/")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running"
    done = wait_drill(source, snap["id"], r.json()["id"])
    assert done["status"] == "passed", (done["error"], done["log"])
    assert done["phase"] == "done" and done["error"] is None
    assert "check passed" in done["log"]
    after = source.api.get(f"/api/workloads/{source.id}/snapshots/{snap['id']}").json()
    assert after["verified_at"] is not None
    assert container_ids(source.id) == ids
    assert source.trees() == live
    assert get_text(source.port, "/index.html") == "new-www\n"
    assert sandbox_left(server.data_dir, done["id"]) == []
    # An exec check sees the snapshot's bytes, not the live ones.
    r = drill(source, snap["id"], {"exec": ["cat", "/www/index.html"]})
    done = wait_drill(source, snap["id"], r.json()["id"])
    assert done["status"] == "passed", done
    assert "old-www" in done["log"] and "new-www" not in done["log"]
    assert sandbox_left(server.data_dir, done["id"]) == []
    listed = source.api.get(f"/api/workloads/{source.id}/drills").json()["items"]
    assert [d["id"] for d in listed][:1] == [done["id"]]
    standings = server.viewer.get("/api/drills/standings").json()["items"]
    mine = [st for st in standings if st["workload_id"] == source.id]
    assert mine and mine[0]["last_status"] == "passed" and mine[0]["verified_at"]


def test_a_failing_check_fails_with_its_output(server: Server, source: Site) -> None:
    (source.paths["www"] / "index.html").unlink()  # the snapshot lacks the page
    snap = source.snapshot()
    write_tree(source.paths["www"], "new-www")
    live = source.trees()
    ids = container_ids(source.id)
    check = {"http": "/index.html", "port": 8080, "timeout_s": 3}
    r = drill(source, snap["id"], check)
    assert r.status_code == 202, r.text
    done = wait_drill(source, snap["id"], r.json()["id"])
    assert done["status"] == "failed", done
    assert "404" in done["error"] and "404" in done["log"], done
    assert done["check"] == check
    after = source.api.get(f"/api/workloads/{source.id}/snapshots/{snap['id']}").json()
    assert after["verified_at"] is None
    assert container_ids(source.id) == ids and source.trees() == live
    assert sandbox_left(server.data_dir, done["id"]) == []
    # A command that fails: its exit code and output are the reason.
    r = drill(source, snap["id"], {"exec": ["sh", "-c", "echo broken-db; exit 3"], "timeout_s": 2})
    done = wait_drill(source, snap["id"], r.json()["id"])
    assert done["status"] == "failed" and "exit 3" in done["error"]
    assert "broken-db" in done["error"]
    # A viewer sees that it failed, not what the check printed (it may print secrets).
    seen = server.viewer.get(
        f"/api/workloads/{source.id}/snapshots/{snap['id']}/drills/{done['id']}"
    )
    assert seen.status_code == 200 and seen.json()["status"] == "failed"
    assert seen.json()["log"] == "" and "broken-db" not in seen.json()["error"]
    listed = server.viewer.get(f"/api/workloads/{source.id}/drills").json()["items"]
    assert all(d["log"] == "" and "404" not in (d["error"] or "") for d in listed)
    standings = server.viewer.get("/api/drills/standings").json()["items"]
    mine = [st for st in standings if st["workload_id"] == source.id]
    assert mine[0]["last_status"] == "failed" and mine[0]["verified_at"] is None
    assert sandbox_left(server.data_dir, done["id"]) == []


def test_a_running_drill_does_not_hold_up_a_deploy(server: Server, source: Site) -> None:
    snap = source.snapshot()
    slow = {"exec": ["sh", "-c", "sleep 20; true"], "timeout_s": 60}
    r = drill(source, snap["id"], slow)
    did = r.json()["id"]
    url = f"/api/workloads/{source.id}/snapshots/{snap['id']}/drills/{did}"
    wait_until(lambda: source.api.get(url).json()["phase"] == "check", 60, "the check to run")
    done = deploy(source.api, source.id)
    assert done["status"] == "succeeded", done["log"]
    assert source.api.get(url).json()["status"] == "running"
    finished = wait_drill(source, snap["id"], did)
    assert finished["status"] == "passed", finished
    assert sandbox_left(server.data_dir, did) == []


def test_drill_refusals_change_nothing(server: Server, source: Site) -> None:
    snap = source.snapshot()
    sid = snap["id"]
    before = source.api.get(f"/api/workloads/{source.id}/drills").json()
    bad = [
        {"http": "/", "exec": ["true"], "port": 80},
        {"http": "/"},
        {"port": 8080},
        {"exec": []},
        {"exec": ["true"], "timeout_s": 0},
        {"http": "no-slash", "port": 80},
        {"nope": 1},
        {"exec": ["true"], "service": "web"},  # an image workload has no services
    ]
    for check in bad:
        assert_error(drill(source, sid, check), 422)
    assert_error(drill(source, "sn_missing"), 404)
    assert_error(server.admin.post("/api/workloads/wl_missing/snapshots/x/drills"), 404)
    assert_error(drill(source, sid, api=server.viewer), 403, "forbidden")
    assert_error(drill(source, sid, api=server.anonymous), 401)
    assert_error(source.api.get(f"/api/workloads/{source.id}/snapshots/{sid}/drills/dr_x"), 404)
    assert source.api.get(f"/api/workloads/{source.id}/drills").json() == before
    # Never deployed: nothing to run.
    other = server.admin.post(
        "/api/workloads",
        json={
            "name": "idle",
            "kind": "image",
            "project": source.workload["project"],
            "stage": "production",
            "config": {"image": "moorage-test/httpd:1"},
        },
    ).json()
    vol = [{"name": "d", "scope": "stage", "source": "idle/d", "target": "/d"}]
    server.admin.put(f"/api/workloads/{other['id']}/volumes", json=vol)
    r = server.admin.post(f"/api/workloads/{other['id']}/snapshots", json={"mode": "none"})
    osid = r.json()["id"]
    wait_until(
        lambda: (
            server.admin.get(f"/api/workloads/{other['id']}/snapshots/{osid}").json()["status"]
            == "ready"
        ),
        60,
        "the capture",
    )
    assert_error(
        server.admin.post(f"/api/workloads/{other['id']}/snapshots/{osid}/drills"),
        409,
        "not_deployed",
    )
    server.admin.delete(f"/api/workloads/{other['id']}", params={"purge_snapshots": "true"})


def test_killed_mid_drill_leaves_no_sandbox(tmp_path: Path) -> None:
    proc, fake, common = crash_server(tmp_path, "drill.after_start")
    data = fake.data_dir
    try:
        site = make_source(fake, unique("crash"))
        snap = site.snapshot()
        ids = container_ids(site.id)
        live = site.trees()
        r = drill(site, snap["id"])
        assert r.status_code == 202, r.text
        did = r.json()["id"]
        wait_faulted(proc, data)
        assert sandbox_left(data, did), "the sandbox should exist when the server died"
    finally:
        stop_server(proc)
    proc, url, _env = start_server(data, common)
    try:
        site.api = again(site.api, url)
        row = site.api.get(f"/api/workloads/{site.id}/snapshots/{snap['id']}/drills/{did}").json()
        assert row["status"] == "failed" and "stopped during the drill" in row["error"]
        assert sandbox_left(data, did) == []
        assert (
            site.api.get(f"/api/workloads/{site.id}/snapshots/{snap['id']}").json()["verified_at"]
            is None
        )
        assert site.trees() == live
        wait_until(lambda: container_ids(site.id) == ids, 30, "the live container")
        assert httpx.get(f"http://127.0.0.1:{site.port}/index.html", timeout=5).status_code == 200
    finally:
        stop_server(proc)


def drill_schedule(server: Server, workload_id: str) -> str:
    """An operator's drill schedule firing every 2 s, bound to the workload; its id."""
    r = server.operator.post(
        "/api/triggers",
        json={
            "kind": "schedule",
            "name": unique("drill"),
            "config": {"cron": "* * * * * */2", "action": "drill"},
        },
    )
    assert r.status_code == 201, r.text
    tid = str(r.json()["id"])
    bound = server.operator.post(f"/api/workloads/{workload_id}/triggers", json={"trigger_id": tid})
    assert bound.status_code == 201, bound.text
    return tid


def test_a_scheduled_drill_proves_the_latest_ready_snapshot(server: Server, source: Site) -> None:
    source.snapshot()
    latest = source.snapshot()
    tid = drill_schedule(server, source.id)

    def scheduled() -> list[dict[str, Any]]:
        items = source.api.get(f"/api/workloads/{source.id}/drills").json()["items"]
        return [d for d in items if d["origin"] == "scheduled" and d["status"] != "running"]

    try:
        wait_until(lambda: bool(scheduled()), 90, "a scheduled drill")
    finally:
        server.operator.delete(f"/api/triggers/{tid}")
    first = scheduled()[-1]
    assert first["snapshot_id"] == latest["id"] and first["status"] == "passed", first
    wait_until(
        lambda: (
            not source.api.get(f"/api/workloads/{source.id}/drills").json()["items"][0]["status"]
            == "running"
        ),
        120,
        "the last drill to end",
    )
    for d in source.api.get(f"/api/workloads/{source.id}/drills").json()["items"]:
        assert sandbox_left(server.data_dir, d["id"]) == []


def test_a_scheduled_drill_with_nothing_to_prove_leaves_an_audit_row(
    server: Server, workload: dict[str, Any]
) -> None:
    """A workload with no ready snapshot has no drill row a schedule could fail: each run
    that passes it over for a new reason writes a ``snapshot.drill_skipped`` row saying
    why; the same reason again writes none."""
    tid = drill_schedule(server, workload["id"])

    def skipped() -> list[dict[str, Any]]:
        rows = server.admin.get(
            "/api/audit", params={"target_type": "workload", "target_id": workload["id"]}
        ).json()["items"]
        return [a for a in rows if a["action"] == "snapshot.drill_skipped"]

    try:
        wait_until(lambda: bool(skipped()), 60, "a skipped drill's audit row")
        time.sleep(5)  # two or more firings more, for the same reason: no row more
    finally:
        server.operator.delete(f"/api/triggers/{tid}")
    assert len(skipped()) == 1, skipped()
    row = skipped()[-1]
    assert row["details"]["trigger"] == tid and row["details"]["code"] == "not_ready", row
    assert "snapshot" in row["details"]["reason"]
    assert server.operator.get(f"/api/workloads/{workload['id']}/drills").json()["items"] == []


def test_cli_drill_waits_and_prints_the_result(server: Server, source: Site) -> None:
    snap = source.snapshot()
    ref = f"{source.workload['project']}/production/site"
    ok = server.cli("snapshots", "drill", ref, token=server.operator.token)
    assert ok.returncode == 0, ok.stderr
    assert f"passed: snapshot {snap['id']} restores" in ok.stdout
    bad = server.cli(
        "snapshots",
        "drill",
        ref,
        snap["id"],
        "--exec",
        "sh",
        "--exec",
        "-c",
        "--exec",
        "echo no-rows; exit 4",
        "--timeout",
        "2",
        token=server.operator.token,
    )
    assert bad.returncode == 1, bad.stdout
    assert "drill failed" in bad.stderr and "no-rows" in bad.stderr


def test_a_drill_without_its_archive_uses_the_verified_copy(
    server: Server, source: Site, tmp_path: Path
) -> None:
    """The local archive is gone but a verified off-site copy exists: the drill fetches it
    (as a restore does) and proves it."""
    r = server.admin.post(
        "/api/storage-targets",
        json={
            "name": unique("disk"),
            "kind": "local",
            "config": {"path": str(tmp_path / "target")},
            "passphrase": "a long test passphrase",
        },
    )
    assert r.status_code == 201, r.text
    target = r.json()["id"]
    snap = source.snapshot()
    r = source.api.put(f"/api/workloads/{source.id}/offsite", json={"target_id": target})
    assert r.status_code == 200, r.text
    url = f"/api/workloads/{source.id}/snapshots/{snap['id']}"

    def verified() -> bool:
        copies = source.api.get(url).json()["copies"]
        return any(c["target_id"] == target and c["status"] == "verified" for c in copies)

    wait_until(verified, 120, "the verified copy")
    archive = server.data_dir / "snapshots" / source.id / f"{snap['id']}.tar.zst"
    archive.unlink()
    r = drill(source, snap["id"], {"exec": ["cat", "/www/index.html"]})
    assert r.status_code == 202, r.text
    done = wait_drill(source, snap["id"], r.json()["id"])
    assert done["status"] == "passed", (done["error"], done["log"])
    assert "off-site copy" in done["log"] and "old-www" in done["log"]
    assert archive.exists() and sandbox_left(server.data_dir, done["id"]) == []
    source.api.delete(f"/api/workloads/{source.id}/offsite")
