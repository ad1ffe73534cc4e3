"""An image workload end to end on the real engine: deploy, serve, data, redeploy, rollback,
self-healing, promote, chain, teardown."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.conftest import Server, create_workload, free_port
from tests.integration.helpers import containers, deploy, get_text, wait_until


def image_config(port: int, image: str = "moorage-test/httpd:1", **extra: Any) -> dict[str, Any]:
    return {
        "image": image,
        "ports": [{"container": 8080, "host": port}],
        "health": {"http": "/", "timeout_seconds": 20},
        **extra,
    }


def test_deploy_serve_data_redeploy_rollback_and_delete(server: Server, project: str) -> None:
    port = free_port()
    w = create_workload(server, project, config=image_config(port))
    wid = w["id"]
    r = server.operator.put(
        f"/api/workloads/{wid}/env",
        json={
            "GREETING": {"value": "ahoy", "secret": False},
            "TOKEN": {"value": "s3cret", "secret": True},
        },
    )
    assert r.status_code == 200
    r = server.operator.put(
        f"/api/workloads/{wid}/volumes",
        json=[
            {"name": "data", "scope": "stage", "source": "app/data", "target": "/data"},
            {"name": "shared", "scope": "project", "source": "common", "target": "/shared"},
        ],
    )
    assert r.status_code == 200, r.text

    first = deploy(server.operator, wid)
    assert first["status"] == "succeeded", first["log"]
    assert first["artifact"]["image_id"].startswith("sha256:")
    assert first["started_at"] and first["finished_at"] and first["reason"] == "manual"
    assert "health: healthy" in first["log"]
    assert get_text(port) == "hello from v1\n"
    assert server.operator.get(f"/api/workloads/{wid}").json()["status"] == "running"

    # Env reaches the container; volumes are binds to the documented host paths.
    (name,) = containers(wid)
    env = subprocess.run(["docker", "exec", name, "env"], capture_output=True, text=True).stdout
    assert "GREETING=ahoy" in env and "TOKEN=s3cret" in env
    subprocess.run(
        ["docker", "exec", name, "sh", "-c", "echo kept > /data/file; echo s > /shared/f"],
        check=True,
    )
    stage_dir = server.data_dir / "volumes" / project / "production" / "app" / "data"
    assert (stage_dir / "file").read_text() == "kept\n"
    assert (server.data_dir / "volumes" / project / "_shared" / "common" / "f").exists()

    # Redeploy a new version on the same host port: stop-first, then the new one serves.
    r = server.operator.patch(
        f"/api/workloads/{wid}", json={"config": {"image": "moorage-test/httpd:2"}}
    )
    assert r.status_code == 200
    second = deploy(server.operator, wid)
    assert second["status"] == "succeeded", second["log"]
    assert get_text(port) == "hello from v2\n"
    assert containers(wid) != [name] and len(containers(wid)) == 1
    assert (stage_dir / "file").read_text() == "kept\n"

    # A failing health check fails the candidate: the old container never stopped.
    r = server.operator.patch(
        f"/api/workloads/{wid}",
        json={
            "config": {
                "image": "moorage-test/httpd:1",
                "health": {"http": "/missing", "timeout_seconds": 3},
            }
        },
    )
    assert r.status_code == 200
    before = containers(wid)
    failed = deploy(server.operator, wid)
    assert failed["status"] == "failed"
    assert "404" in failed["error"]
    assert "the previous container kept serving" in failed["log"]
    assert get_text(port) == "hello from v2\n"
    assert containers(wid) == before

    # Delete tears down; the data stays on disk.
    assert server.admin.delete(f"/api/workloads/{wid}").status_code == 204
    assert containers(wid) == []
    assert (stage_dir / "file").read_text() == "kept\n"


def test_start_first_when_no_fixed_port_and_crash_looping_image_fails(
    server: Server, project: str
) -> None:
    w = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "ports": [{"container": 8080}],
            "health": {"http": "/", "timeout_seconds": 20},
        },
    )
    ok = deploy(server.operator, w["id"])
    assert ok["status"] == "succeeded", ok["log"]
    assert "stopping the old one first" not in ok["log"]
    again = deploy(server.operator, w["id"])
    assert again["status"] == "succeeded"
    assert "stopping the old one first" not in again["log"]
    assert "removed the previous container" in again["log"]
    assert len(containers(w["id"])) == 1

    r = server.operator.patch(
        f"/api/workloads/{w['id']}",
        json={"config": {"command": ["sh", "-c", "echo boom; exit 3"], "health": None}},
    )
    assert r.status_code == 200, r.text
    crashed = deploy(server.operator, w["id"])
    assert crashed["status"] == "failed"
    assert "exit code 3" in crashed["error"] or "restarting" in crashed["error"], crashed["error"]
    assert len(containers(w["id"])) == 1
    assert server.operator.get(f"/api/workloads/{w['id']}").json()["status"] == "running"


def test_image_healthcheck_and_exec_health(server: Server, project: str) -> None:
    w = create_workload(
        server, project, config={"image": "moorage-test/healthy:1", "ports": [{"container": 8080}]}
    )
    d = deploy(server.operator, w["id"])
    assert d["status"] == "succeeded", d["log"]
    assert "HEALTHCHECK" in d["log"]
    w2 = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "health": {"cmd": ["sh", "-c", "test -f /www/index.html"], "timeout_seconds": 20},
        },
    )
    d2 = deploy(server.operator, w2["id"])
    assert d2["status"] == "succeeded", d2["log"]
    bad = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "health": {"cmd": ["sh", "-c", "exit 1"], "timeout_seconds": 2},
        },
    )
    d3 = deploy(server.operator, bad["id"])
    assert d3["status"] == "failed" and "exited 1" in d3["error"]
    assert containers(bad["id"]) == []


def test_a_container_removed_by_hand_comes_back(server: Server, project: str) -> None:
    port = free_port()
    w = create_workload(server, project, config=image_config(port))
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    (name,) = containers(w["id"])
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    wait_until(lambda: containers(w["id"], all_states=False) != [], 30, "reconcile to recreate")
    assert get_text(port, timeout=20) == "hello from v1\n"
    # Stopped by hand: started again.
    (name,) = containers(w["id"])
    subprocess.run(["docker", "stop", "-t", "1", name], check=True, capture_output=True)
    wait_until(lambda: containers(w["id"], all_states=False) == [name], 30, "restart")
    audit = server.admin.get("/api/audit", params={"target_id": w["id"]}).json()["items"]
    assert any(a["action"] == "workload.reconcile" for a in audit)


def test_chain_and_promote(server: Server, project: str) -> None:
    staging = create_workload(
        server, project, stage="staging", config={"image": "moorage-test/httpd:2"}
    )
    prod_port = free_port()
    prod = create_workload(server, project, config=image_config(prod_port))
    after = create_workload(server, project, config={"image": "moorage-test/httpd:1"})

    r = server.operator.post(
        f"/api/workloads/{prod['id']}/promote-from", json={"source": staging["id"]}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "nothing_to_promote"
    assert server.operator.get(f"/api/workloads/{prod['id']}/deployments").json()["items"] == []

    ran = deploy(server.operator, staging["id"])
    assert ran["status"] == "succeeded"
    r = server.operator.put(f"/api/workloads/{prod['id']}/chain", json={"next": [after["id"]]})
    assert r.status_code == 200
    r = server.operator.post(
        f"/api/workloads/{prod['id']}/promote-from", json={"source": staging["id"]}
    )
    assert r.status_code == 202, r.text
    assert r.json()["reason"] == f"promote:{staging['id']}"
    from tests.integration.helpers import wait_deployment

    done = wait_deployment(server.operator, prod["id"], r.json()["id"])
    assert done["status"] == "succeeded", done["log"]
    assert get_text(prod_port) == "hello from v2\n"
    promoted = server.operator.get(f"/api/workloads/{prod['id']}").json()["config"]["image"]
    # A local image has no registry digest: its name, pinned by its id.
    artifact = ran["artifact"]
    assert promoted == f"{artifact['image'].split('@')[0]}@{artifact['image_id']}", promoted

    def chained() -> list[dict[str, Any]]:
        items = server.operator.get(f"/api/workloads/{after['id']}/deployments").json()["items"]
        return [d for d in items if d["reason"] == f"chain:{prod['id']}"]

    wait_until(lambda: bool(chained()) and chained()[0]["status"] == "succeeded", 60, "chain")
