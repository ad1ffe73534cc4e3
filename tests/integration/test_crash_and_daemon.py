"""The server killed mid-deploy, and the Docker daemon out of reach."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import (
    Api,
    admin_api,
    free_port,
    start_server,
    stop_server,
    unique,
    wait_faulted,
)
from tests.integration.helpers import containers, get_text, wait_deployment, wait_until


def setup_workload(api: Api, port: int) -> str:
    # A slug of its own: a stage network is named by project and stage, and Docker's names
    # are the whole engine's, so another worker's "crash" would share (and keep) it.
    slug = unique("crash")
    assert api.post("/api/projects", json={"slug": slug}).status_code == 201
    r = api.post(
        "/api/workloads",
        json={
            "name": "web",
            "kind": "image",
            "project": slug,
            "stage": "production",
            "config": {
                "image": "moorage-test/httpd:1",
                "ports": [{"container": 8080, "host": port}],
                "health": {"http": "/", "timeout_seconds": 20},
            },
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_killed_after_stop_then_restart_interrupts_and_reconciles(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    proc, url, env = start_server(
        data, {"MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": "deploy.after_stop"}
    )
    try:
        api = admin_api(url, env)
        wid = setup_workload(api, port)
        first = api.post(f"/api/workloads/{wid}/deploy").json()
        # The first deploy stops nothing, so it passes the fault point untouched.
        assert wait_deployment(api, wid, first["id"])["status"] == "succeeded"
        assert get_text(port) == "hello from v1\n"
        api.patch(f"/api/workloads/{wid}", json={"config": {"image": "moorage-test/httpd:2"}})
        second = api.post(f"/api/workloads/{wid}/deploy").json()
        wait_faulted(proc, data)
        # Killed with the old container stopped and nothing serving.
        assert containers(wid, all_states=False) == []
    finally:
        stop_server(proc)

    proc, url, env = start_server(data)
    try:
        api = admin_api(url, env)
        d = api.get(f"/api/workloads/{wid}/deployments/{second['id']}").json()
        assert d["status"] == "interrupted" and "stopped while this deploy ran" in d["error"], d
        wait_until(lambda: containers(wid, all_states=False) != [], 30, "reconcile")
        assert get_text(port, timeout=20) == "hello from v1\n"
        wait_until(
            lambda: api.get(f"/api/workloads/{wid}").json()["status"] == "running",
            30,
            "status running",
        )
        # And the next deploy goes through.
        third = api.post(f"/api/workloads/{wid}/deploy").json()
        assert wait_deployment(api, wid, third["id"])["status"] == "succeeded"
        assert get_text(port) == "hello from v2\n"
    finally:
        stop_server(proc)


def test_daemon_unreachable_gives_clear_errors_not_crashes(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    proc, url, env = start_server(data)
    try:
        api = admin_api(url, env)
        wid = setup_workload(api, port)
        d = api.post(f"/api/workloads/{wid}/deploy").json()
        assert wait_deployment(api, wid, d["id"])["status"] == "succeeded"
    finally:
        stop_server(proc)
    (name,) = containers(wid)

    gone = f"unix://{tmp_path}/no-docker.sock"
    proc, url, env = start_server(data, {"DOCKER_HOST": gone})
    try:
        api = admin_api(url, env)
        assert api.get("/api/healthz").status_code == 200
        wait_until(
            lambda: api.get(f"/api/workloads/{wid}").json()["status"] == "unknown",
            30,
            "status unknown",
        )
        r = api.get(f"/api/workloads/{wid}/logs")
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable"
        assert "dockerd" in r.json()["error"]["message"]
        r = api.delete(f"/api/workloads/{wid}")
        assert r.status_code == 503
        assert api.get(f"/api/workloads/{wid}").status_code == 200
        d = api.post(f"/api/workloads/{wid}/deploy").json()
        failed = wait_deployment(api, wid, d["id"])
        assert failed["status"] == "failed" and "not reachable" in failed["error"]
        assert api.get("/api/workloads").status_code == 200
        assert proc.poll() is None
    finally:
        stop_server(proc)
    # Nothing was touched while the daemon was out of reach.
    assert containers(wid) == [name]
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "hello from v1\n"
