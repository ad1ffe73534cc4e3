"""Pulling from a private registry: Debian's docker-registry on a loopback port, htpasswd auth.

The registry holds moorage-test/httpd:2 as ``<host>/team/app:1``; the local tag is
removed before every test, so a deploy has to pull it through the registry.
Docker treats 127.0.0.0/8 registries as insecure-allowed, so plain HTTP works.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, create_workload, free_port
from tests.integration.helpers import containers, deploy, get_text, wait_until

REGISTRY_BINARY = "/usr/bin/docker-registry"
SOURCE_IMAGE = "moorage-test/httpd:2"


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:<port>
    username: str
    password: str
    ref: str  # the pushed image, <host>/team/app:1
    digest: str  # sha256:... of the pushed manifest


def docker(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result


def image_present(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def untag(ref: str) -> None:
    """Remove the local tag only; the image itself stays under its other names."""
    if image_present(ref):
        docker("rmi", ref)


def _write_config(root: Path, port: int, htpasswd: Path) -> Path:
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n"
        "  level: warn\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
        f"  secret: {secrets.token_hex(16)}\n"
        "auth:\n"
        "  htpasswd:\n"
        "    realm: moorage-test\n"
        f"    path: {htpasswd}\n"
    )
    return config


def _wait_for_registry(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    def answers() -> bool:
        assert proc.poll() is None, f"the registry exited: {log.read_text()}"
        try:
            return httpx.get(url, timeout=1).status_code == 401
        except httpx.HTTPError:
            return False

    wait_until(answers, 20, "the registry to answer 401 on /v2/")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    username, password = "moorage-ci", secrets.token_urlsafe(18)
    htpasswd = root / "htpasswd"
    line = subprocess.run(
        ["htpasswd", "-Bbn", username, password],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    htpasswd.write_text(line + "\n")
    port = free_port()
    host = f"127.0.0.1:{port}"
    config = _write_config(root, port, htpasswd)
    log = root / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    ref = f"{host}/team/app:1"
    try:
        _wait_for_registry(proc, f"http://{host}/v2/", log)
        # The CLI keeps its login in a throwaway config dir, never in ~/.docker, which
        # docker-py (and so the server) would read as default credentials.
        cli_env = {**os.environ, "DOCKER_CONFIG": str(root / "docker-config")}
        docker("login", host, "-u", username, "--password-stdin", env=cli_env, stdin=password)
        docker("tag", SOURCE_IMAGE, ref)
        pushed = docker("push", ref, env=cli_env).stdout
        match = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed)
        assert match, pushed
        untag(ref)
        yield Registry(host, username, password, ref, match.group(1))
    finally:
        untag(ref)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def not_pulled(registry: Registry) -> Iterator[None]:
    """Each test starts and ends without the pushed image present locally."""
    untag(registry.ref)
    assert not image_present(registry.ref)
    yield
    untag(registry.ref)


@pytest.fixture
def cleanup(server: Server) -> Iterator[list[str]]:
    """Workload ids to delete (and so tear down) after the test."""
    ids: list[str] = []
    yield ids
    for workload_id in ids:
        server.admin.delete(f"/api/workloads/{workload_id}")


def app_config(registry: Registry, port: int, auth: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {"image": registry.ref, "ports": [{"container": 8080, "host": port}]}
    if auth is not None:
        config["registry_auth"] = auth
    return config


def right_auth(registry: Registry) -> dict[str, Any]:
    return {"username": registry.username, "password": registry.password, "server": registry.host}


def test_deploy_pulls_with_the_workload_credentials(
    server: Server, project: str, registry: Registry, cleanup: list[str]
) -> None:
    port = free_port()
    workload = create_workload(
        server, project, config=app_config(registry, port, right_auth(registry))
    )
    cleanup.append(workload["id"])

    done = deploy(server.operator, workload["id"])
    assert done["status"] == "succeeded", done["log"]
    assert f"pulling {registry.ref} as {registry.username}" in done["log"]
    assert registry.password not in done["log"]
    assert image_present(registry.ref)

    artifact = done["artifact"]
    local_id = docker("image", "inspect", "-f", "{{.Id}}", SOURCE_IMAGE).stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", artifact["image_id"]), artifact
    assert artifact["image_id"] == local_id
    assert artifact["digest"] == f"{registry.host}/team/app@{registry.digest}"
    assert artifact["image"] == registry.ref

    assert get_text(port) == "hello from v2\n"
    (name,) = containers(workload["id"])
    assert docker("inspect", "-f", "{{.Image}}", name).stdout.strip() == local_id


def test_the_api_never_returns_the_registry_password(
    server: Server, project: str, registry: Registry, cleanup: list[str]
) -> None:
    port = free_port()
    r = server.operator.post(
        "/api/workloads",
        json={
            "name": "private-app",
            "kind": "image",
            "project": project,
            "stage": "production",
            "config": app_config(registry, port, right_auth(registry)),
        },
    )
    assert r.status_code == 201, r.text
    workload_id = r.json()["id"]
    cleanup.append(workload_id)
    answers = [r]
    assert r.json()["config"]["registry_auth"] == {
        "username": registry.username,
        "password": "**********",
        "server": registry.host,
    }

    shown = server.viewer.get(f"/api/workloads/{workload_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["config"] == r.json()["config"]
    answers.append(shown)

    # A patch of another field keeps the stored password: the deploy after it still pulls.
    patched = server.operator.patch(
        f"/api/workloads/{workload_id}", json={"config": {"stop_timeout": 3}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["registry_auth"]["password"] == "**********"
    answers.append(patched)
    done = deploy(server.operator, workload_id)
    assert done["status"] == "succeeded", done["log"]
    assert get_text(port) == "hello from v2\n"

    answers += [
        server.viewer.get("/api/workloads", params={"project": project}),
        server.viewer.get(f"/api/workloads/{workload_id}/deployments"),
        server.viewer.get(f"/api/workloads/{workload_id}/deployments/{done['id']}"),
        server.viewer.get(f"/api/workloads/{workload_id}/logs"),
        server.admin.get("/api/audit"),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201), answer.text
        assert registry.password not in answer.text, answer.request.url


@pytest.mark.parametrize("which", ["wrong password", "unknown user"])
def test_wrong_credentials_fail_the_deploy_clearly_and_run_nothing(
    server: Server, project: str, registry: Registry, cleanup: list[str], which: str
) -> None:
    auth = right_auth(registry)
    if which == "wrong password":
        auth["password"] = "not-" + registry.password
    else:
        auth["username"] = "nobody-" + registry.username
    workload = create_workload(server, project, config=app_config(registry, free_port(), auth))
    cleanup.append(workload["id"])

    done = deploy(server.operator, workload["id"])
    assert done["status"] == "failed", done["log"]
    assert done["error"].startswith(f"cannot pull {registry.ref}"), done["error"]
    assert re.search(r"unauthori[sz]ed|authentication", done["error"], re.I), done["error"]
    assert auth["password"] not in done["error"] + done["log"]
    assert containers(workload["id"]) == []
    assert not image_present(registry.ref)
    wait_until(
        lambda: server.viewer.get(f"/api/workloads/{workload['id']}").json()["status"] == "failed",
        10,
        "the workload to read failed",
    )


def test_without_credentials_the_pull_is_refused(
    server: Server, project: str, registry: Registry, cleanup: list[str]
) -> None:
    workload = create_workload(server, project, config=app_config(registry, free_port(), None))
    cleanup.append(workload["id"])

    done = deploy(server.operator, workload["id"])
    assert done["status"] == "failed", done["log"]
    assert f"pulling {registry.ref}" in done["log"]
    assert re.search(r"unauthori[sz]ed|authentication|no basic auth", done["error"], re.I), done[
        "error"
    ]
    assert containers(workload["id"]) == []
    assert not image_present(registry.ref)
