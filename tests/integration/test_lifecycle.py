"""Stop, start and restart through the real server and engine (SPEC section 9): a stopped
workload stays stopped through reconcile passes and triggered deploys; a never-deployed
one reads ``never_deployed``; ``pending_changes`` says when a saved change is not running."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Api,
    Server,
    admin_api,
    assert_error,
    create_workload,
    free_port,
    start_server,
    stop_server,
    unique,
)
from tests.integration.helpers import containers, deploy, wait_deployment, wait_until

# The module's own server is made once per worker that runs one of its tests: one worker.
pytestmark = pytest.mark.xdist_group("lifecycle")

QUICK = {"image": "moorage-test/httpd:1", "health": {"grace_seconds": 0.5}}


def inspect(workload_id: str) -> dict[str, Any]:
    """Docker's own view of the workload's one container."""
    [name] = containers(workload_id)
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{json .State}}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def running(workload_id: str) -> bool:
    return bool(inspect(workload_id)["Running"])


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], capture_output=True, check=True)


def read(api: Api, workload_id: str) -> dict[str, Any]:
    r = api.get(f"/api/workloads/{workload_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def audit_count(api: Api, workload_id: str) -> int:
    params = {"target_type": "workload", "target_id": workload_id, "limit": 1000}
    return len(api.get("/api/audit", params=params).json()["items"])


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server of this module's own that reconciles every second."""
    data = tmp_path_factory.mktemp("lifecycle") / "var"
    proc, url, env = start_server(data, {"MOORAGE_RECONCILE_SECONDS": "1"})
    try:
        yield admin_api(url, env)
    finally:
        stop_server(proc)


def new_workload(api: Api, project: str, **config: Any) -> str:
    r = api.post(
        "/api/workloads",
        json={
            "name": unique("w"),
            "kind": "image",
            "project": project,
            "stage": "production",
            "config": {**QUICK, **config},
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_stopped_workload_stays_stopped_through_reconcile_passes(quick_server: Api) -> None:
    api = quick_server
    project = unique("life")
    assert api.post("/api/projects", json={"slug": project}).status_code == 201
    kept, stopped = new_workload(api, project), new_workload(api, project)
    for wid in (kept, stopped):
        assert deploy(api, wid)["status"] == "succeeded"

    r = api.post(f"/api/workloads/{stopped}/stop")
    assert r.status_code == 200, r.text
    assert (r.json()["desired_state"], r.json()["status"]) == ("stopped", "stopped")
    assert not running(stopped)

    # Reconcile passes run: a container of a running workload stopped by hand comes back...
    docker("stop", containers(kept)[0])
    wait_until(lambda: running(kept), 30, "reconcile to bring the running workload back")
    # ...while the stopped workload stays down, and one started by hand is stopped again.
    assert not running(stopped)
    docker("start", containers(stopped)[0])
    wait_until(lambda: not running(stopped), 30, "reconcile to stop it again")
    time.sleep(3)  # three more passes
    assert not running(stopped)
    assert (read(api, stopped)["desired_state"], read(api, stopped)["status"]) == (
        "stopped",
        "stopped",
    )

    # A triggered deploy does not start it: it fails and says why.
    hook = api.post(
        "/api/triggers",
        json={"kind": "webhook", "name": unique("h"), "config": {"provider": "generic"}},
    ).json()
    bound = api.post(f"/api/workloads/{stopped}/triggers", json={"trigger_id": hook["id"]})
    assert bound.status_code == 201, bound.text
    fired = api.post(
        f"/hooks/{hook['token']}",
        content=b'{"ref": "refs/heads/main"}',
        headers={"X-Moorage-Event": "push", "X-Moorage-Delivery": str(uuid.uuid4())},
    )
    assert fired.status_code == 202, fired.text
    [queued] = api.get(f"/api/workloads/{stopped}/deployments", params={"limit": 1}).json()["items"]
    done = wait_deployment(api, stopped, queued["id"])
    assert done["status"] == "failed" and "is stopped" in done["error"], done
    assert not running(stopped)
    assert read(api, stopped)["status"] == "stopped"

    # Start runs the last good deployment again, and reconcile keeps it running.
    r = api.post(f"/api/workloads/{stopped}/start")
    assert r.status_code == 200, r.text
    assert (r.json()["desired_state"], r.json()["status"]) == ("running", "running")
    assert running(stopped)

    # Restart: the same container, started again.
    started = inspect(stopped)["StartedAt"]
    r = api.post(f"/api/workloads/{stopped}/restart")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running"
    assert running(stopped) and inspect(stopped)["StartedAt"] != started

    # A deploy by hand of a stopped workload runs it.
    assert api.post(f"/api/workloads/{stopped}/stop").status_code == 200
    assert deploy(api, stopped)["status"] == "succeeded"
    assert read(api, stopped)["desired_state"] == "running" and running(stopped)


def test_a_never_deployed_workload(server: Server, project: str) -> None:
    w = create_workload(server, project)
    wid = w["id"]
    assert (w["status"], w["desired_state"], w["pending_changes"]) == (
        "never_deployed",
        "running",
        False,
    )
    before, audited = read(server.operator, wid), audit_count(server.admin, wid)
    error = assert_error(server.operator.post(f"/api/workloads/{wid}/restart"), 409, "not_deployed")
    assert w["name"] in error["message"]
    assert read(server.operator, wid) == before
    assert audit_count(server.admin, wid) == audited

    stopped = server.operator.post(f"/api/workloads/{wid}/stop").json()
    assert (stopped["desired_state"], stopped["status"]) == ("stopped", "never_deployed")
    started = server.operator.post(f"/api/workloads/{wid}/start").json()
    assert (started["desired_state"], started["status"]) == ("running", "never_deployed")
    assert containers(wid) == []
    assert audit_count(server.admin, wid) == audited + 2

    for route in ("stop", "start", "restart"):
        assert_error(server.viewer.post(f"/api/workloads/{wid}/{route}"), 403, "forbidden")
        assert_error(server.operator.post(f"/api/workloads/wl_missing/{route}"), 404)


def test_pending_changes_follow_what_the_last_deploy_ran(server: Server, project: str) -> None:
    w = create_workload(server, project, config=QUICK)
    wid, url = w["id"], f"/api/workloads/{w['id']}"

    def pending() -> bool:
        one = read(server.viewer, wid)["pending_changes"]
        listed = server.viewer.get("/api/workloads", params={"project": project}).json()
        [item] = [i for i in listed["items"] if i["id"] == wid]
        assert item["pending_changes"] == one, "the list and the workload disagree"
        return bool(one)

    server.operator.put(f"{url}/env", json={"MODE": {"value": "one", "secret": False}})
    assert not pending()  # never deployed: nothing to differ from
    assert deploy(server.operator, wid)["status"] == "succeeded"
    assert not pending()

    server.operator.put(f"{url}/env", json={"MODE": {"value": "two", "secret": False}})
    assert pending()
    server.operator.put(f"{url}/env", json={"MODE": {"value": "one", "secret": False}})
    assert not pending()  # back to what runs

    data = {"name": "data", "scope": "stage", "source": unique("d"), "target": "/data"}
    assert server.operator.put(f"{url}/volumes", json=[data]).status_code == 200
    assert pending()
    assert deploy(server.operator, wid)["status"] == "succeeded"
    assert not pending()
    r = server.operator.put(f"{url}/volumes", json=[{**data, "shared": True}])
    assert r.status_code == 200, r.text
    assert not pending()  # sharing changes no mount

    assert server.operator.patch(url, json={"config": {"stop_timeout": 3}}).status_code == 200
    assert pending()
    assert server.operator.post(f"{url}/stop").json()["pending_changes"] is True
    assert deploy(server.operator, wid)["status"] == "succeeded"
    assert not pending()


def test_the_cli_stops_starts_and_restarts(server: Server, project: str) -> None:
    w = create_workload(server, project, config=QUICK)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    ref = f"{project}/production/{w['name']}"
    token = server.operator.token
    for command, desired, status in (
        ("stop", "stopped", "stopped"),
        ("start", "running", "running"),
        ("restart", "running", "running"),
    ):
        out = server.cli("apps", command, ref, token=token)
        assert out.returncode == 0, (out.stdout, out.stderr)
        assert f"{w['name']} (status: {status})" in out.stdout
        now = read(server.viewer, w["id"])
        assert (now["desired_state"], now["status"]) == (desired, status)
    never = create_workload(server, project)
    out = server.cli("apps", "restart", never["id"], token=token)
    assert out.returncode == 1 and "no successful deployment" in out.stderr


@pytest.mark.parametrize("kind", ["image", "compose"])
def test_stop_and_delete_work_when_a_volume_path_has_gone_bad(
    server: Server, project: str, tmp_path: Path, kind: str
) -> None:
    """The helper's reproduction: a volume's directory became a link to outside (a
    container could make one, or an admin's roots changed), and stop and delete were
    422 ``invalid_volume`` while the container kept running. Taking down what runs needs
    no volume: both work from labels and stored state."""
    config: dict[str, Any] = (
        {"image": "moorage-test/httpd:1", "ports": [{"container": 8080, "host": free_port()}]}
        if kind == "image"
        else {"compose": "services:\n  web:\n    image: moorage-test/httpd:1\n"}
    )
    workload = create_workload(server, project, config=config, kind=kind)
    url = f"/api/workloads/{workload['id']}"
    source = unique("gone")
    volume = {"name": "d", "scope": "stage", "source": source, "target": "/data"}
    r = server.operator.put(
        f"{url}/volumes", json=[{**volume, **({"service": "web"} if kind == "compose" else {})}]
    )
    assert r.status_code == 200, r.text
    host_path = Path(r.json()["items"][0]["host_path"])
    host_path.mkdir(parents=True, exist_ok=True)
    assert deploy(server.operator, workload["id"])["status"] == "succeeded"
    assert containers(workload["id"], all_states=False)
    host_path.rmdir()
    host_path.symlink_to(tmp_path)  # now outside its scope: every path check refuses it
    try:
        r = server.operator.post(f"{url}/stop")
        assert r.status_code == 200, r.text
        wait_until(lambda: not containers(workload["id"], all_states=False), 60, "the stop")
        r = server.admin.delete(url)
        assert r.status_code == 204, r.text
        assert containers(workload["id"]) == []
    finally:
        host_path.unlink()
