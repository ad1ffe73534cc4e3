"""A real ``moorage serve`` running its own Caddy (SPEC section 12), against the test
BIND and pebble that scripts/bind.sh and scripts/pebble.sh start (scripts/test.sh
exports their addresses). Caddy listens on the ports pebble validates on: HTTP
127.0.0.1:58002 and HTTPS 127.0.0.1:58001; app.moorage.test resolves to 127.0.0.1 in
the test zone, so HTTP-01 and TLS-ALPN-01 reach this Caddy."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    Api,
    Server,
    admin_api,
    create_workload,
    free_port,
    make_user,
    start_server,
    stop_server,
    unique,
)

HTTP_PORT = 58002
HTTPS_PORT = 58001
REPO = Path(__file__).resolve().parents[2]


def _parts() -> dict[str, str]:
    """The test BIND and pebble, from scripts/test.sh's variables or the scripts."""
    env = {}
    if not os.environ.get("MOORAGE_TEST_DNS_SERVER"):
        out = subprocess.run([REPO / "scripts" / "bind.sh"], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.fail(f"scripts/bind.sh: {out.stderr}")
        server, name, secret = out.stdout.split()
        os.environ.update(
            MOORAGE_TEST_DNS_SERVER=server,
            MOORAGE_TEST_TSIG_NAME=name,
            MOORAGE_TEST_TSIG_SECRET=secret,
        )
    if not os.environ.get("MOORAGE_TEST_ACME_DIRECTORY"):
        out = subprocess.run([REPO / "scripts" / "pebble.sh"], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.fail(f"scripts/pebble.sh: {out.stderr}")
        directory, root = out.stdout.split()
        os.environ.update(MOORAGE_TEST_ACME_DIRECTORY=directory, MOORAGE_TEST_ACME_CA_ROOT=root)
    for key in (
        "MOORAGE_TEST_DNS_SERVER",
        "MOORAGE_TEST_TSIG_NAME",
        "MOORAGE_TEST_TSIG_SECRET",
        "MOORAGE_TEST_ACME_DIRECTORY",
        "MOORAGE_TEST_ACME_CA_ROOT",
    ):
        env[key] = os.environ[key]
    return env


@pytest.fixture(scope="session")
def parts() -> dict[str, str]:
    return _parts()


@pytest.fixture(scope="session")
def proxy_server(
    tmp_path_factory: pytest.TempPathFactory, parts: dict[str, str]
) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("proxy-server")
    data_dir = base / "var"
    volume_root = base / "roots"
    volume_root.mkdir()
    proc, url, env = start_server(
        data_dir,
        {
            "MOORAGE_VOLUME_ROOTS": str(volume_root),
            "MOORAGE_PROXY": "caddy",
            "MOORAGE_PROXY_HTTP_ADDR": f"127.0.0.1:{HTTP_PORT}",
            "MOORAGE_PROXY_HTTPS_ADDR": f"127.0.0.1:{HTTPS_PORT}",
            "MOORAGE_PROXY_ADMIN_ADDR": f"127.0.0.1:{free_port()}",
            "MOORAGE_ACME_DIRECTORY": parts["MOORAGE_TEST_ACME_DIRECTORY"],
            "MOORAGE_ACME_CA_ROOT": parts["MOORAGE_TEST_ACME_CA_ROOT"],
            "MOORAGE_ACME_EMAIL": "ops@moorage.test",
            "MOORAGE_PUBLIC_IP": "127.0.0.1",
        },
    )
    try:
        admin = admin_api(url, env)
        yield Server(
            url=url,
            data_dir=data_dir,
            volume_root=volume_root,
            env=env,
            admin=admin,
            operator=make_user(admin, url, "olga", "operator"),
            viewer=make_user(admin, url, "victor", "viewer"),
            anonymous=Api(url),
        )
    finally:
        stop_server(proc)


@pytest.fixture
def proxy_project(proxy_server: Server) -> str:
    slug = unique("p")
    r = proxy_server.admin.post("/api/projects", json={"slug": slug})
    assert r.status_code == 201, r.text
    return slug


def web_workload(server: Server, project: str, **config: Any) -> dict[str, Any]:
    """An httpd workload publishing 8080 on a port the engine picks."""
    return create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "ports": [{"container": 8080}],
            "health": {"http": "/", "grace_seconds": 0},
            **config,
        },
    )


def pebble_roots(parts: dict[str, str]) -> str:
    """The roots pebble issues under (made at its start), as PEM: what a client trusts."""
    mgmt = parts["MOORAGE_TEST_ACME_DIRECTORY"].replace(":58400/dir", ":58401")
    pems = []
    for i in range(3):
        ctx = ssl.create_default_context(cafile=parts["MOORAGE_TEST_ACME_CA_ROOT"])
        r = httpx.get(f"{mgmt}/roots/{i}", verify=ctx)
        if r.status_code != 200:
            break
        pems.append(r.text)
    return "\n".join(pems)


def through_proxy(
    client: httpx.Client, host: str, path: str = "/", *, https: bool = True
) -> httpx.Response:
    """GET ``path`` of ``host`` from this machine's Caddy, like ``curl --resolve
    host:port:127.0.0.1``: the connection goes to 127.0.0.1, SNI and Host stay ``host``."""
    port = HTTPS_PORT if https else HTTP_PORT
    scheme = "https" if https else "http"
    return client.get(
        f"{scheme}://127.0.0.1:{port}{path}",
        headers={"Host": host},
        extensions={"sni_hostname": host} if https else {},
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
