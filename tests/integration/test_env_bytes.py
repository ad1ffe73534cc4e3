"""Env reaches the container byte for byte, for the image and the compose kind, whatever
the value holds; for compose, ``${NAME}`` in the file resolves to the workload's env.

What arrived is read with ``docker inspect`` (``Config.Env``): the engine's own record
of what the container's processes get.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.conftest import Server, create_workload, free_port
from tests.integration.helpers import deploy, get_text

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAq7BFUpkGp3+LQmlQ\n"
    "-----END PRIVATE KEY-----\n"
)
# name -> value: each is something an env file, a shell or a YAML reader would rewrite.
VALUES = {
    "TEMPLATE": "Hello ${USER_NAME}!",
    "USER_NAME": "not-to-be-interpolated",
    "DOLLARS": "$a $$b $ ${c:-d} $(e) end$",
    "QUOTES": '\'single\' "double" `back` "unclosed',
    "BACKSLASHES": "C:\\dir\\new \\t \\\\ \\$X \\",
    "PEM": PEM,
    "EQUALS": "=a=b==c=",
    "SPACES": "  both ends  ",
    "UNICODE": "héllo ✓ 日本語 😀 \u2028\u2029\ufeff \u0085",
    "EMPTY": "",
    "CONTROLS": "tab\there\r\ncrlf \x1b[0m \x07 \x7f",
    "NEWLINES": "\n\nmiddle\n\n",
    "YAML_TRUE": "yes",
    "YAML_NULL": "null",
    "YAML_NUMBER": "0x1F",
    "YAML_COMMENT": "a # b",
    "YAML_MAPPING": "key: value",
    "YAML_ALIAS": "*x",
    "YAML_FLOW": "{a: [1, 2]}",
    "YAML_TILDE": "~",
    "YAML_DASH": "- item",
}
SECRET = {"PEM", "DOLLARS"}


def env_body() -> dict[str, Any]:
    return {k: {"value": v, "secret": k in SECRET} for k, v in VALUES.items()}


def inspected_env(container: str) -> list[str]:
    out = subprocess.run(
        ["docker", "inspect", container], capture_output=True, check=True, timeout=30
    ).stdout
    return list(json.loads(out.decode("utf-8"))[0]["Config"]["Env"])


def as_bytes(env: list[str]) -> dict[bytes, bytes]:
    """``Config.Env`` as name -> value bytes (split at the first '=')."""
    pairs = (item.encode("utf-8").partition(b"=") for item in env)
    return {name: value for name, _, value in pairs}


def containers_of(label: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.ID}}", "--filter", f"label={label}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(out.split())


def read_inside(container: str, name: str) -> bytes:
    """The variable as a process in the running container reads it."""
    command = ["docker", "exec", container, "sh", "-c", f'printf %s "${name}"']
    return subprocess.run(command, capture_output=True, check=True, timeout=30).stdout


def assert_exact(container: str, expected: dict[str, str]) -> None:
    got = as_bytes(inspected_env(container))
    for name, value in expected.items():
        assert got.get(name.encode()) == value.encode("utf-8"), name


def test_image_kind_env_arrives_byte_for_byte(server: Server, project: str) -> None:
    port = free_port()
    w = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "ports": [{"container": 8080, "host": port}],
            "health": {"http": "/", "timeout_seconds": 20},
        },
    )
    try:
        r = server.operator.put(f"/api/workloads/{w['id']}/env", json=env_body())
        assert r.status_code == 200, r.text
        done = deploy(server.operator, w["id"])
        assert done["status"] == "succeeded", done["log"]
        assert PEM not in done["log"]
        (container,) = containers_of(f"moorage.workload={w['id']}")
        assert_exact(container, VALUES)
        assert read_inside(container, "PEM") == PEM.encode()
    finally:
        server.admin.delete(f"/api/workloads/{w['id']}")


def test_compose_kind_env_arrives_byte_for_byte_and_the_file_resolves_from_it(
    server: Server, project: str
) -> None:
    port = free_port()
    text = (
        "services:\n"
        "  web:\n"
        "    image: moorage-test/httpd:1\n"
        "    init: true\n"
        f'    ports: ["127.0.0.1:{port}:8080"]\n'
        "    environment:\n"
        # The file's own ${NAME} resolves from the workload's env, and the value it
        # resolves to is not interpolated again.
        '      FROM_FILE: "${TEMPLATE}"\n'
        '      PEM_FROM_FILE: "${PEM}"\n'
        "      SPACES: overridden-by-the-workload\n"
        "  worker:\n"
        "    image: moorage-test/httpd:1\n"
        "    init: true\n"
        '    command: ["sleep", "3600"]\n'
    )
    w = create_workload(server, project, kind="compose", config={"compose": text})
    try:
        r = server.operator.put(f"/api/workloads/{w['id']}/env", json=env_body())
        assert r.status_code == 200, r.text
        done = deploy(server.operator, w["id"])
        assert done["status"] == "succeeded", done["log"]
        assert "skipped" not in done["log"] and PEM not in done["log"]
        assert get_text(port) == "hello from v1\n"

        by_service = {}
        for container in containers_of(f"moorage.workload={w['id']}"):
            out = subprocess.run(
                [
                    "docker",
                    "inspect",
                    "--format",
                    '{{index .Config.Labels "com.docker.compose.service"}}',
                    container,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            by_service[out] = container
        assert sorted(by_service) == ["web", "worker"]
        for container in by_service.values():
            assert_exact(container, VALUES)
        assert_exact(
            by_service["web"], {"FROM_FILE": VALUES["TEMPLATE"], "PEM_FROM_FILE": VALUES["PEM"]}
        )
        assert read_inside(by_service["web"], "PEM") == PEM.encode()

        # A changed value reaches the redeployed containers exactly; a removed key is gone.
        changed = {**VALUES, "TEMPLATE": "Bye ${USER_NAME}$"}
        del changed["QUOTES"]
        body = {k: {"value": v, "secret": False} for k, v in changed.items()}
        assert server.operator.put(f"/api/workloads/{w['id']}/env", json=body).status_code == 200
        again = deploy(server.operator, w["id"])
        assert again["status"] == "succeeded", again["log"]
        for container in containers_of(f"moorage.workload={w['id']}"):
            assert_exact(container, changed)
            assert b"QUOTES" not in as_bytes(inspected_env(container))
    finally:
        server.admin.delete(f"/api/workloads/{w['id']}")
