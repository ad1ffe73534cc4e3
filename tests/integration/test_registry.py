"""Pulling from a private registry: Debian's docker-registry on a loopback port, htpasswd auth.

The registry holds moorage-test/httpd:2 as ``<host>/team/app:1``; the local tag is
removed before every test, so a deploy has to pull it through the registry.
Docker treats 127.0.0.0/8 registries as insecure-allowed, so plain HTTP works.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Server, create_workload, free_port
from tests.integration.helpers import containers, deploy, get_text, wait_until
from tests.integration.registry import (
    RegistryServer,
    docker,
    image_present,
    registry_server_fixture,  # noqa: F401 (the registry_server fixture)
    untag,
)

SOURCE_IMAGE = "moorage-test/httpd:2"


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:<port>
    username: str
    password: str
    ref: str  # the pushed image, <host>/team/app:1
    digest: str  # sha256:... of the pushed manifest


@pytest.fixture(scope="module")
def registry(registry_server: RegistryServer) -> Iterator[Registry]:
    ref = f"{registry_server.host}/team/app:1"
    digest = registry_server.push(SOURCE_IMAGE, ref)
    try:
        yield Registry(
            registry_server.host, registry_server.username, registry_server.password, ref, digest
        )
    finally:
        untag(ref)


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
        server.operator.get(f"/api/workloads/{workload_id}/logs"),
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
