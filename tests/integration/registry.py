"""A private registry for integration tests: Debian's docker-registry on a loopback port.

``registry_server`` starts ``/usr/bin/docker-registry`` with htpasswd auth and logs the
docker CLI in to it (in a throwaway config dir); ``RegistryServer.push`` puts a local
image there under any name. Docker treats 127.0.0.0/8 registries as insecure-allowed,
so plain HTTP works. Test modules import the fixture function to use it:
``from tests.integration.registry import registry_server_fixture  # noqa: F401``.
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

from tests.conftest import free_port
from tests.integration.helpers import wait_until

REGISTRY_BINARY = "/usr/bin/docker-registry"


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


@dataclass(frozen=True)
class RegistryServer:
    host: str  # 127.0.0.1:<port>
    username: str
    password: str
    cli_env: dict[str, str]  # environment of a docker CLI logged in to the registry

    def auth(self) -> dict[str, Any]:
        """A workload's ``registry_auth`` with the right credentials."""
        return {"username": self.username, "password": self.password, "server": self.host}

    def push(self, source: str, ref: str, *, keep_local_tag: bool = False) -> str:
        """Push local image ``source`` as ``ref``; return the manifest digest.

        The local ``ref`` tag is dropped afterwards unless ``keep_local_tag``: dropping it
        races with a server that pulls ``ref`` as soon as the push lands.
        """
        docker("tag", source, ref)
        try:
            pushed = docker("push", ref, env=self.cli_env).stdout
        finally:
            if not keep_local_tag:
                untag(ref)
        match = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed)
        assert match, pushed
        return match.group(1)


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


@pytest.fixture(scope="module", name="registry_server")
def registry_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
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
    try:
        _wait_for_registry(proc, f"http://{host}/v2/", log)
        # The CLI keeps its login in a throwaway config dir, never in ~/.docker, which
        # docker-py (and so the server) would read as default credentials.
        cli_env = {**os.environ, "DOCKER_CONFIG": str(root / "docker-config")}
        docker("login", host, "-u", username, "--password-stdin", env=cli_env, stdin=password)
        yield RegistryServer(host, username, password, cli_env)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
