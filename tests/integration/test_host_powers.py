"""The issue's two reproductions through the real engine, now admin-only; and the named
volumes Compose makes for a project, kept across deploys and removed with the workload.

1. A top-level named volume with ``driver_opts: {type: none, o: bind, device: /}``: the
   container wrote a root-owned file into the host's ``/tmp``.
2. ``secrets: {s: {file: /var/run/docker.sock}}``: the container got the Docker API.

An operator gets 403 ``needs_admin`` and nothing exists afterwards (no row, no container,
no volume); an admin's workload deploys and does exactly that, which is why it needs one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.sources.compose.deploy import project_name
from tests.conftest import RUN_ID, Server, assert_error, free_port, unique
from tests.integration.helpers import deploy, get_text

STAGE = "production"
PROJECT_LABEL = "com.docker.compose.project"


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


def ids(kind: str, label: str) -> list[str]:
    """Containers (``ps -a``) or volumes carrying ``label`` (an exact key=value)."""
    command = ["ps", "-aq"] if kind == "container" else ["volume", "ls", "-q"]
    return sorted(docker(*command, "--filter", f"label={label}").split())


def service(port: int, extra: str = "", command: str = "exec httpd -f -p 8080 -h /www") -> str:
    return (
        "services:\n"
        "  web:\n"
        "    image: moorage-test/httpd:1\n"
        "    init: true\n"
        f"    command: [sh, -c, {command!r}]\n"
        "    ports:\n"
        f'      - "127.0.0.1:{port}:8080"\n'
        f"{extra}"
    )


@pytest.fixture
def created(server: Server) -> Iterator[list[tuple[str, str]]]:
    """(workload id, compose project) to delete, and whose volumes to sweep, afterwards."""
    made: list[tuple[str, str]] = []
    yield made
    for workload_id, compose_project in made:
        server.admin.delete(f"/api/workloads/{workload_id}")
        for volume in ids("volume", f"{PROJECT_LABEL}={compose_project}"):
            docker("volume", "rm", "-f", volume, check=False)


def refused_then_created(
    server: Server, project: str, text: str, created: list[tuple[str, str]]
) -> dict[str, Any]:
    name = unique("hp")
    body = {
        "name": name,
        "kind": "compose",
        "project": project,
        "stage": STAGE,
        "config": {"compose": text},
    }
    compose_project = project_name(project, STAGE, name)
    error = assert_error(server.operator.post("/api/workloads", json=body), 403, "needs_admin")
    listed = server.viewer.get("/api/workloads", params={"project": project}).json()["items"]
    assert listed == []
    assert ids("container", f"{PROJECT_LABEL}={compose_project}") == []
    assert ids("volume", f"{PROJECT_LABEL}={compose_project}") == []

    r = server.admin.post("/api/workloads", json=body)
    assert r.status_code == 201, r.text
    created.append((r.json()["id"], compose_project))
    return {"error": error, "workload": r.json(), "compose_project": compose_project}


def test_a_named_volume_bound_to_the_host_root_is_admin_only(
    server: Server, project: str, created: list[tuple[str, str]]
) -> None:
    marker = Path(f"/tmp/moorage-host-power-{RUN_ID}-{unique('m')}")
    port = free_port()
    text = service(
        port,
        "    volumes:\n"
        "      - hostroot:/host\n"
        "volumes:\n"
        "  hostroot:\n"
        "    driver: local\n"
        "    driver_opts: {type: none, o: bind, device: /}\n",
        command=f"echo owned > /host{marker} && exec httpd -f -p 8080 -h /www",
    )
    try:
        made = refused_then_created(server, project, text, created)
        assert made["error"]["details"][0]["service"] == "volumes.hostroot"
        assert made["error"]["details"][0]["power"] == "volume_driver"
        assert not marker.exists()

        done = deploy(server.admin, made["workload"]["id"])
        assert done["status"] == "succeeded", done["log"]
        assert get_text(port) == "hello from v1\n"
        assert marker.read_text() == "owned\n"  # what only an admin may allow
        assert marker.stat().st_uid == 0
    finally:
        marker.unlink(missing_ok=True)


def test_the_docker_socket_as_a_secret_is_admin_only(
    server: Server, project: str, created: list[tuple[str, str]]
) -> None:
    port = free_port()
    text = service(
        port,
        "    secrets: [s]\nsecrets:\n  s:\n    file: /var/run/docker.sock\n",
    )
    made = refused_then_created(server, project, text, created)
    assert made["error"]["details"][0]["service"] == "secrets.s"
    assert made["error"]["details"][0]["power"] == "secrets_file"

    done = deploy(server.admin, made["workload"]["id"])
    assert done["status"] == "succeeded", done["log"]
    (container,) = ids("container", f"{PROJECT_LABEL}={made['compose_project']}")
    # The host's Docker API, inside the container: why this needs an admin.
    assert docker("exec", container, "sh", "-c", "test -S /run/secrets/s && echo socket") == (
        "socket\n"
    )


def test_compose_volumes_outlive_deploys_and_go_with_the_workload(
    server: Server, project: str, created: list[tuple[str, str]]
) -> None:
    port = free_port()
    volume = "    volumes:\n      - data:/data\nvolumes:\n  data: {}\n"
    r = server.operator.post(
        "/api/workloads",
        json={
            "name": unique("vol"),
            "kind": "compose",
            "project": project,
            "stage": STAGE,
            "config": {"compose": service(port, volume)},
        },
    )
    assert r.status_code == 201, r.text  # a plain named volume is the project's own
    workload = r.json()
    compose_project = project_name(project, STAGE, workload["name"])
    created.append((workload["id"], compose_project))
    # A volume whose name merely starts like the project's, without its label: not ours.
    decoy = f"{compose_project}_data-decoy"
    docker("volume", "create", decoy)
    try:
        assert deploy(server.operator, workload["id"])["status"] == "succeeded"
        (owned,) = ids("volume", f"{PROJECT_LABEL}={compose_project}")
        (container,) = ids("container", f"{PROJECT_LABEL}={compose_project}")
        docker("exec", container, "sh", "-c", "echo kept > /data/file")

        # A redeploy of a changed file recreates the container and keeps the volume.
        changed = service(port, volume, command="exec httpd -f -p 8080 -h /www -c /dev/null")
        r = server.operator.patch(
            f"/api/workloads/{workload['id']}", json={"config": {"compose": changed}}
        )
        assert r.status_code == 200, r.text
        assert deploy(server.operator, workload["id"])["status"] == "succeeded"
        (again,) = ids("container", f"{PROJECT_LABEL}={compose_project}")
        assert again != container
        assert ids("volume", f"{PROJECT_LABEL}={compose_project}") == [owned]
        assert docker("exec", again, "cat", "/data/file") == "kept\n"

        # A delete never drops data nobody named (newcomer pass: the volume and its file
        # were gone without a word): refused, naming the volume, and nothing touched.
        url = f"/api/workloads/{workload['id']}"
        error = assert_error(server.admin.delete(url), 409, "has_volumes")
        assert owned in error["message"] and "purge_volumes" in error["message"], error
        assert docker("exec", again, "cat", "/data/file") == "kept\n"
        assert server.viewer.get(url).status_code == 200
        r = server.admin.delete(url, params={"purge_volumes": "true"})
        assert r.status_code == 204, r.text
        assert ids("volume", f"{PROJECT_LABEL}={compose_project}") == []
        assert ids("container", f"{PROJECT_LABEL}={compose_project}") == []
        assert docker("volume", "inspect", "-f", "{{.Name}}", decoy) == f"{decoy}\n"
    finally:
        docker("volume", "rm", "-f", decoy, check=False)
