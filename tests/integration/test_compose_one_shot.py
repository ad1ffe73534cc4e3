"""Compose services that exit 0 by design (a seed or migration job) are a success, through
the real server and Compose v1: the stack keeps running, the job stays exited 0 and is
not run again by reconcile; a job that exits non-zero still fails the deploy."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.conftest import Server, create_workload, free_port
from tests.integration.helpers import deploy, get_text, wait_until

RECONCILE_PASSES = 3  # the test server reconciles every 2 s


def stack(port: int, *, seed_exit: int = 0, dependency: bool = True) -> str:
    """``seed`` (restart "no") runs once and exits; ``web`` waits for it to complete."""
    text = (
        "services:\n"
        "  seed:\n"
        "    image: moorage-test/httpd:1\n"
        '    restart: "no"\n'
        f'    command: ["sh", "-c", "echo seeded; sleep 1; exit {seed_exit}"]\n'
        "  web:\n"
        "    image: moorage-test/httpd:1\n"
        "    init: true\n"
        '    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
        f'    ports: ["127.0.0.1:{port}:8080"]\n'
    )
    if dependency:
        text += "    depends_on:\n      seed:\n        condition: service_completed_successfully\n"
    return text


def service_states(workload_id: str) -> dict[str, dict[str, Any]]:
    """Each service's container state as Docker reports it."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=moorage.workload={workload_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
    found = {}
    for c in json.loads(out.stdout):
        service = c["Config"]["Labels"]["com.docker.compose.service"]
        assert service not in found, f"two containers of {service}"
        found[service] = {"id": c["Id"], **c["State"]}
    return found


def status(server: Server, workload_id: str) -> str:
    return str(server.viewer.get(f"/api/workloads/{workload_id}").json()["status"])


def test_a_completed_seed_is_a_success_and_is_not_run_again(server: Server, project: str) -> None:
    port = free_port()
    w = create_workload(server, project, kind="compose", config={"compose": stack(port)})
    try:
        done = deploy(server.operator, w["id"])
        assert done["status"] == "succeeded", done["log"]
        assert done["error"] is None
        assert get_text(port) == "hello from v1\n"
        states = service_states(w["id"])
        assert sorted(states) == ["seed", "web"]
        assert (states["web"]["Status"], states["web"]["Running"]) == ("running", True)
        assert (states["seed"]["Status"], states["seed"]["ExitCode"]) == ("exited", 0)
        assert status(server, w["id"]) == "running"

        # Reconcile passes leave the finished job finished: not started again.
        time.sleep(2 * RECONCILE_PASSES)
        later = service_states(w["id"])
        assert later["seed"]["id"] == states["seed"]["id"]
        assert later["seed"]["StartedAt"] == states["seed"]["StartedAt"]
        assert (later["seed"]["Status"], later["seed"]["ExitCode"]) == ("exited", 0)
        assert later["web"]["StartedAt"] == states["web"]["StartedAt"]
        assert status(server, w["id"]) == "running"

        # A job that fails fails the deploy, names the job, and the previous file comes back.
        r = server.operator.patch(
            f"/api/workloads/{w['id']}", json={"config": {"compose": stack(port, seed_exit=3)}}
        )
        assert r.status_code == 200, r.text
        failed = deploy(server.operator, w["id"])
        assert failed["status"] == "failed", failed["log"]
        assert "seed" in failed["error"] and "exit code 3" in failed["error"], failed["error"]
        assert "rolling back to the previous compose file" in failed["log"]
        back = service_states(w["id"])
        assert (back["seed"]["Status"], back["seed"]["ExitCode"]) == ("exited", 0)
        assert back["web"]["Running"] is True
        assert get_text(port) == "hello from v1\n"
        wait_until(lambda: status(server, w["id"]) == "running", 10, "status running")
    finally:
        server.admin.delete(f"/api/workloads/{w['id']}")


def test_a_restart_no_job_nobody_waits_for_is_a_success_unless_it_fails(
    server: Server, project: str
) -> None:
    port = free_port()
    text = stack(port, dependency=False)
    w = create_workload(server, project, kind="compose", config={"compose": text})
    try:
        done = deploy(server.operator, w["id"])
        assert done["status"] == "succeeded", done["log"]
        states = service_states(w["id"])
        assert (states["seed"]["Status"], states["seed"]["ExitCode"]) == ("exited", 0)
        assert states["web"]["Running"] is True

        # The same job exiting 3 with nothing waiting for it: up succeeds, the deploy fails.
        r = server.operator.patch(
            f"/api/workloads/{w['id']}",
            json={"config": {"compose": stack(port, seed_exit=3, dependency=False)}},
        )
        assert r.status_code == 200, r.text
        failed = deploy(server.operator, w["id"])
        assert failed["status"] == "failed", failed["log"]
        assert "seed" in failed["error"] and "exit code 3" in failed["error"], failed["error"]
        assert get_text(port) == "hello from v1\n"
    finally:
        server.admin.delete(f"/api/workloads/{w['id']}")
