"""The compose kind end to end: the real server runs Compose v1 against the real engine.

Each test owns its workload and its loopback port; everything Compose creates carries
this run's ``moorage.test`` label through the server's MOORAGE_CONTAINER_LABELS.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.sources.compose.deploy import project_name
from tests.conftest import (
    RUN_ID,
    TEST_LABEL,
    Server,
    assert_error,
    create_workload,
    free_port,
    unique,
)
from tests.integration.helpers import deploy, get_text, wait_until

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
STAGE = "production"


def compose_text(port: int, *, image: str = "moorage-test/httpd:1", command: Any = None) -> str:
    """A one-service Compose file publishing container port 8080 on a loopback port."""
    return (
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        # busybox httpd as PID 1 ignores SIGTERM; an init stops it without the 10 s wait.
        "    init: true\n"
        f"    command: {json.dumps(command if command is not None else HTTPD)}\n"
        "    ports:\n"
        f'      - "127.0.0.1:{port}:8080"\n'
    )


class App:
    """A compose workload created through the API, with the loopback port it publishes."""

    def __init__(self, server: Server, project: str) -> None:
        self.server = server
        self.project = project
        self.port = free_port()
        self.name = unique("web")
        self.text = compose_text(self.port)
        self.workload = create_workload(
            server,
            project,
            name=self.name,
            stage=STAGE,
            kind="compose",
            config={"compose": self.text},
        )
        self.id: str = self.workload["id"]
        self.compose_project = project_name(project, STAGE, self.name)

    @property
    def file(self) -> Path:
        return self.server.data_dir / "compose" / self.id / "compose.yml"

    def deploy(self) -> dict[str, Any]:
        return deploy(self.server.operator, self.id)

    def patch(self, text: str) -> Any:
        return self.server.operator.patch(
            f"/api/workloads/{self.id}", json={"config": {"compose": text}}
        )

    def read(self) -> dict[str, Any]:
        r = self.server.viewer.get(f"/api/workloads/{self.id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def deployment_ids(self) -> list[str]:
        r = self.server.viewer.get(f"/api/workloads/{self.id}/deployments")
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()["items"]]

    def containers(self) -> list[str]:
        """Ids of every container (any state) of this workload's Compose project."""
        return docker_ids(
            "ps", "-a", "--filter", f"label=com.docker.compose.project={self.compose_project}"
        )


def docker_ids(*args: str) -> list[str]:
    out = subprocess.run(
        ["docker", *args, "--format", "{{.ID}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return sorted(out.split())


def inspect(container_id: str) -> dict[str, Any]:
    out = subprocess.run(
        ["docker", "inspect", container_id], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return dict(json.loads(out)[0])


def container_env(container_id: str) -> dict[str, str]:
    """The environment a process inside the running container sees (``docker exec env``)."""
    out = subprocess.run(
        ["docker", "exec", container_id, "env"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def file_state(path: Path) -> tuple[int, int, str]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, path.read_text()


@pytest.fixture
def app(server: Server, project: str) -> Iterator[App]:
    created = App(server, project)
    yield created
    # Tear down through the API so a failing test leaves no Compose project behind.
    server.admin.delete(f"/api/workloads/{created.id}")


def test_deploy_serves_through_the_loopback_port(server: Server, app: App) -> None:
    done = app.deploy()
    assert done["status"] == "succeeded", done["log"]
    assert done["error"] is None
    assert get_text(app.port) == "hello from v1\n"

    artifact = done["artifact"]
    assert artifact["compose"] == app.text
    assert artifact["project"] == app.compose_project
    assert artifact["deployment"] == done["id"]
    assert app.file.read_text() == app.text
    assert app.read()["status"] == "running"

    (cid,) = app.containers()
    labels = inspect(cid)["Config"]["Labels"]
    assert labels[TEST_LABEL] == RUN_ID
    assert labels["moorage.workload"] == app.id
    assert labels["moorage.project"] == app.project
    assert labels["moorage.stage"] == STAGE


def test_env_vars_reach_the_container(server: Server, app: App) -> None:
    r = server.operator.put(
        f"/api/workloads/{app.id}/env",
        json={
            "GREETING": {"value": "ahoy there", "secret": False},
            "API_TOKEN": {"value": "s3cret=value", "secret": True},
        },
    )
    assert r.status_code == 200, r.text
    done = app.deploy()
    assert done["status"] == "succeeded", done["log"]
    assert "s3cret" not in done["log"]

    (cid,) = app.containers()
    env = container_env(cid)
    assert env["GREETING"] == "ahoy there"
    assert env["API_TOKEN"] == "s3cret=value"

    # A changed value reaches a redeployed container; a removed key is gone from it.
    r = server.operator.put(
        f"/api/workloads/{app.id}/env", json={"GREETING": {"value": "bye", "secret": False}}
    )
    assert r.status_code == 200, r.text
    done = app.deploy()
    assert done["status"] == "succeeded", done["log"]
    (cid,) = app.containers()
    env = container_env(cid)
    assert env["GREETING"] == "bye"
    assert "API_TOKEN" not in env


def test_redeploy_with_the_same_file_does_not_rewrite_it(server: Server, app: App) -> None:
    first = app.deploy()
    assert first["status"] == "succeeded", first["log"]
    before = file_state(app.file)
    (container_before,) = app.containers()

    again = app.deploy()
    assert again["status"] == "succeeded", again["log"]
    assert "compose.yml unchanged" in again["log"]
    assert "wrote compose.yml" not in again["log"]
    assert file_state(app.file) == before
    # Nothing changed, so Compose keeps the running container instead of recreating it.
    assert app.containers() == [container_before]
    assert get_text(app.port) == "hello from v1\n"


def test_update_serves_the_new_version_and_a_failing_update_rolls_back(
    server: Server, app: App
) -> None:
    assert app.deploy()["status"] == "succeeded"
    assert get_text(app.port) == "hello from v1\n"

    v2 = compose_text(app.port, image="moorage-test/httpd:2")
    r = app.patch(v2)
    assert r.status_code == 200, r.text
    done = app.deploy()
    assert done["status"] == "succeeded", done["log"]
    assert "wrote compose.yml" in done["log"]
    assert get_text(app.port) == "hello from v2\n"
    assert app.file.read_text() == v2

    broken = compose_text(app.port, image="moorage-test/httpd:2", command=["sh", "-c", "exit 1"])
    r = app.patch(broken)
    assert r.status_code == 200, r.text
    failed = app.deploy()
    assert failed["status"] == "failed", failed["log"]
    assert "exit code 1" in failed["error"], failed
    assert "rolling back to the previous compose file" in failed["log"]

    # The previous version is back: its file, one running container, its answer.
    assert app.file.read_text() == v2
    (cid,) = app.containers()
    state = inspect(cid)
    assert state["State"]["Running"] is True
    assert state["Config"]["Cmd"] == HTTPD
    assert get_text(app.port) == "hello from v2\n"
    wait_until(lambda: app.read()["status"] == "running", 10, "the workload to read running")


def test_a_container_that_dies_soon_after_start_fails_the_deploy(server: Server, app: App) -> None:
    assert app.deploy()["status"] == "succeeded"
    # Runs (and would answer) for a moment, then exits: Compose's `up` has already returned.
    dies = compose_text(app.port, command=["sh", "-c", "httpd -p 8080 -h /www; sleep 1; exit 1"])
    assert app.patch(dies).status_code == 200
    failed = app.deploy()
    assert failed["status"] == "failed", failed["log"]
    assert app.file.read_text() == app.text
    (cid,) = app.containers()
    assert inspect(cid)["Config"]["Cmd"] == HTTPD
    assert get_text(app.port) == "hello from v1\n"


# What is wrong with each file -> (the file, what the error message must name).
INVALID_FILES = {
    "not YAML": ("services:\n  web: [unclosed\n", "not valid YAML"),
    "a key Compose does not know": (
        "services:\n  web:\n    image: moorage-test/httpd:1\n    imagez: oops\n",
        "imagez",
    ),
    "a build section": (
        "services:\n  web:\n    build: .\n    image: moorage-test/httpd:1\n",
        "'build'",
    ),
}


@pytest.mark.parametrize(("text", "named"), INVALID_FILES.values(), ids=INVALID_FILES.keys())
def test_a_file_compose_refuses_is_422_at_create(
    server: Server, project: str, text: str, named: str
) -> None:
    name = unique("bad")
    r = server.operator.post(
        "/api/workloads",
        json={
            "name": name,
            "kind": "compose",
            "project": project,
            "stage": STAGE,
            "config": {"compose": text},
        },
    )
    error = assert_error(r, 422, "invalid_config")
    assert named in error["message"], error
    listed = server.viewer.get("/api/workloads", params={"project": project})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    assert (
        docker_ids(
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={project_name(project, STAGE, name)}",
        )
        == []
    )


def test_a_file_compose_refuses_is_422_at_patch(server: Server, app: App) -> None:
    assert app.deploy()["status"] == "succeeded"
    before_workload = app.read()
    before_file = file_state(app.file)
    before_deployments = app.deployment_ids()
    before_containers = app.containers()

    for what, (text, named) in INVALID_FILES.items():
        r = app.patch(text)
        assert named in assert_error(r, 422, "invalid_config")["message"], what
        assert app.read() == before_workload, what
        assert file_state(app.file) == before_file, what
        assert app.deployment_ids() == before_deployments, what
        assert app.containers() == before_containers, what
    assert get_text(app.port) == "hello from v1\n"


def test_logs_answer_what_the_containers_print(server: Server, project: str) -> None:
    port = free_port()
    marker = f"moorage-marker-{RUN_ID}"
    text = compose_text(port, command=["sh", "-c", f"echo {marker}; exec httpd -f -p 8080 -h /www"])
    workload = create_workload(server, project, kind="compose", config={"compose": text})
    try:
        done = deploy(server.operator, workload["id"])
        assert done["status"] == "succeeded", done["log"]

        def logs() -> str:
            r = server.operator.get(f"/api/workloads/{workload['id']}/logs", params={"tail": 50})
            assert r.status_code == 200, r.text
            return str(r.json()["logs"])

        wait_until(lambda: marker in logs(), 20, "the marker in the logs")
        r = server.operator.get(f"/api/workloads/{workload['id']}/logs", params={"tail": 0})
        assert_error(r, 422)
    finally:
        server.admin.delete(f"/api/workloads/{workload['id']}")


def test_delete_tears_the_compose_project_down(server: Server, app: App) -> None:
    assert app.deploy()["status"] == "succeeded"
    assert app.containers()
    networks = docker_ids("network", "ls", "--filter", f"label={TEST_LABEL}={RUN_ID}")
    assert docker_ids("network", "ls", "--filter", f"name={app.compose_project}_default")

    r = server.admin.delete(f"/api/workloads/{app.id}")
    assert r.status_code == 204, r.text

    assert app.containers() == []
    assert docker_ids("network", "ls", "--filter", f"name={app.compose_project}_default") == []
    assert set(docker_ids("network", "ls", "--filter", f"label={TEST_LABEL}={RUN_ID}")) <= set(
        networks
    )
    assert not app.file.parent.exists()
    assert server.viewer.get(f"/api/workloads/{app.id}").status_code == 404


def test_workloads_whose_slugs_join_alike_keep_separate_projects(server: Server) -> None:
    # "<p>-staging"/production/web and "<p>"/staging/production-web read the same once
    # joined with hyphens; Compose would then treat them as one project.
    base = unique("p")
    for slug in (base, f"{base}-staging"):
        r = server.admin.post("/api/projects", json={"slug": slug})
        assert r.status_code == 201, r.text
    apps = []
    for project, stage, name in (
        (f"{base}-staging", "production", "web"),
        (base, "staging", "production-web"),
    ):
        port = free_port()
        workload = create_workload(
            server,
            project,
            name=name,
            stage=stage,
            kind="compose",
            config={"compose": compose_text(port)},
        )
        apps.append((workload["id"], port))
    first, second = apps
    try:
        for workload_id, _ in apps:
            done = deploy(server.operator, workload_id)
            assert done["status"] == "succeeded", done["log"]
        for _, port in apps:
            assert get_text(port) == "hello from v1\n"

        r = server.admin.delete(f"/api/workloads/{second[0]}")
        assert r.status_code == 204, r.text
        assert get_text(first[1]) == "hello from v1\n"
        running = docker_ids("ps", "--filter", f"label=moorage.workload={first[0]}")
        assert len(running) == 1
    finally:
        for workload_id, _ in apps:
            server.admin.delete(f"/api/workloads/{workload_id}")


def test_renaming_a_deployed_workload_keeps_its_compose_project(server: Server, app: App) -> None:
    assert app.deploy()["status"] == "succeeded"
    running = app.containers()
    assert running
    r = server.operator.patch(f"/api/workloads/{app.id}", json={"name": unique("renamed")})
    assert r.status_code == 200, r.text
    again = app.deploy()
    assert again["status"] == "succeeded", again["log"]
    assert again["artifact"]["project"] == app.compose_project
    assert app.containers() == running
    assert get_text(app.port) == "hello from v1\n"
    assert server.admin.delete(f"/api/workloads/{app.id}").status_code == 204
    assert app.containers() == []


def test_named_volumes_carry_the_container_labels(server: Server, project: str) -> None:
    """MOORAGE_CONTAINER_LABELS reach the named volumes the project creates, next to the
    file's own labels and driver (Compose v1 replaces an override's volume whole), so a
    cleanup by label finds them (issue 12); the labels of an existing volume stay as
    Compose made them."""
    text = (
        "services:\n"
        "  web:\n"
        "    image: moorage-test/httpd:1\n"
        f"    command: {json.dumps(HTTPD)}\n"
        "    init: true\n"
        "    volumes: [cache:/cache, plain:/plain]\n"
        "volumes:\n"
        "  cache:\n"
        "    driver: local\n"
        "    labels: {own: mine}\n"
        "  plain: {}\n"
    )
    wl = create_workload(server, project, kind="compose", config={"compose": text})
    try:
        done = deploy(server.operator, wl["id"])
        assert done["status"] == "succeeded", done["log"]
        prefix = project_name(project, STAGE, wl["name"])
        for volume, own in (("cache", {"own": "mine"}), ("plain", {})):
            labels = json.loads(
                subprocess.run(
                    ["docker", "volume", "inspect", "-f", "{{json .Labels}}", f"{prefix}_{volume}"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            assert labels[TEST_LABEL] == RUN_ID, labels
            assert labels["com.docker.compose.project"] == prefix
            assert own.items() <= labels.items(), labels
        labelled = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", f"label={TEST_LABEL}={RUN_ID}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert {f"{prefix}_cache", f"{prefix}_plain"} <= set(labelled)
    finally:
        r = server.admin.delete(f"/api/workloads/{wl['id']}", params={"purge_volumes": "true"})
        assert r.status_code == 204, r.text
