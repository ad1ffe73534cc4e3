"""Registry credentials are bound to the registry host they were saved for.

An admin's workload pulls from the private registry (Debian's docker-registry, htpasswd)
with a stored login. An operator then changes only its ``image`` to a registry on another
loopback port: a fake one that records every request and asks for Basic auth, as a real
registry would, so that a daemon holding a login for it would send it. It never sees the
admin's login: the change drops it from the config, and the engine sends a login only to
the host it belongs to.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from moorage.errors import EngineError
from moorage.plugins.kind_config import MASK
from moorage.runtime.docker import DockerEngine
from moorage.runtime.engine import RegistryCredentials
from tests.conftest import Server, assert_error, free_port
from tests.integration.helpers import containers, deploy
from tests.integration.registry import (
    RegistryServer,
    registry_server_fixture,  # noqa: F401 (the registry_server fixture)
    untag,
)

SOURCE_IMAGE = "moorage-test/httpd:2"


class FakeRegistry:
    """A registry that knows no image and writes down every request's headers."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with fake.lock:
                    fake.seen.append({"path": self.path, **dict(self.headers.items())})
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

            def log_message(self, *_args: Any) -> None:
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def authorizations(self) -> list[str]:
        with self.lock:
            return [h.get("Authorization", "") for h in self.seen if "Authorization" in h]


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()


@pytest.fixture(scope="module")
def private_ref(registry_server: RegistryServer) -> Iterator[str]:
    ref = f"{registry_server.host}/team/bound:1"
    registry_server.push(SOURCE_IMAGE, ref)
    try:
        yield ref
    finally:
        untag(ref)


def leaked(fake: FakeRegistry, registry: RegistryServer) -> list[str]:
    """Every login the fake registry was sent: it has none, so any is a leak (the admin's
    above all, which would come as Basic ``username:password``)."""
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    sent = fake.authorizations()
    assert not [a for a in sent if basic in a], "the admin's login reached another registry"
    return sent


def logged_in(
    server: Server, project: str, registry: RegistryServer, name: str, ref: str | None = None
) -> dict[str, Any]:
    """An admin's new image workload ``name`` of ``ref`` (default: one on ``registry``)
    with the registry's login stored."""
    login = {"username": registry.username, "password": registry.password}
    config = {"image": ref or f"{registry.host}/team/bound:1", "registry_auth": login}
    body = {"name": name, "kind": "image", "project": project, "stage": "production"}
    r = server.admin.post("/api/workloads", json={**body, "config": config})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_an_image_moved_to_another_registry_never_takes_the_login_along(
    server: Server,
    project: str,
    registry_server: RegistryServer,
    private_ref: str,
    fake_registry: FakeRegistry,
) -> None:
    untag(private_ref)
    workload = logged_in(server, project, registry_server, "bound", private_ref)
    try:
        assert workload["config"]["registry_auth"]["server"] == registry_server.host
        done = deploy(server.admin, workload["id"])
        assert done["status"] == "succeeded", done["log"]
        untag(private_ref)

        # The operator changes only the image, to a registry on another host.
        moved = f"{fake_registry.host}/team/bound:1"
        r = server.operator.patch(
            f"/api/workloads/{workload['id']}", json={"config": {"image": moved}}
        )
        assert r.status_code == 200, r.text
        assert "registry_auth" not in r.json()["config"]
        done = deploy(server.operator, workload["id"])
        assert done["status"] == "failed", done["log"]
        assert f"pulling {moved}" in done["log"]
        assert registry_server.username not in done["log"]

        assert fake_registry.seen, "the daemon never asked the fake registry"
        assert leaked(fake_registry, registry_server) == []
        # Moving back does not bring the dropped login back.
        r = server.operator.patch(
            f"/api/workloads/{workload['id']}", json={"config": {"image": private_ref}}
        )
        assert "registry_auth" not in r.json()["config"]
    finally:
        server.admin.delete(f"/api/workloads/{workload['id']}")
        untag(private_ref)
    assert containers(workload["id"]) == []


@pytest.mark.parametrize(
    "auth",
    [{"server": "{fake}"}, {"server": "{fake}", "password": MASK}, {"username": "someone"}],
    ids=["server", "server-masked-password", "username"],
)
def test_a_login_pointed_elsewhere_must_be_sent_again(
    server: Server,
    project: str,
    registry_server: RegistryServer,
    fake_registry: FakeRegistry,
    auth: dict[str, str],
) -> None:
    """The helper's reproduction: a merge patch of ``registry_auth.server`` kept the stored
    password, and the deploy sent the admin's login to the new server. A change of where
    a stored login goes is refused unless it brings the password (422, nothing saved)."""
    workload = logged_in(server, project, registry_server, "kept")
    url, before = f"/api/workloads/{workload['id']}", workload["config"]
    try:
        patch = {k: v.replace("{fake}", fake_registry.host) for k, v in auth.items()}
        image = f"{fake_registry.host}/team/bound:1" if "server" in auth else before["image"]
        for api in (server.operator, server.admin):
            r = api.patch(url, json={"config": {"image": image, "registry_auth": patch}})
            error = assert_error(r, 422, "invalid_config")
            assert "registry_auth.password" in error["message"], error
            assert server.viewer.get(url).json()["config"] == before
        # Sent again, the login goes where its owner now points it.
        r = server.admin.patch(
            url,
            json={"config": {"image": image, "registry_auth": {**patch, "password": "new-one"}}},
        )
        assert r.status_code == 200, r.text
    finally:
        server.admin.delete(url)
    assert leaked(fake_registry, registry_server) == []


def test_the_engine_sends_a_login_only_to_its_own_host(
    registry_server: RegistryServer, fake_registry: FakeRegistry
) -> None:
    login = RegistryCredentials(
        registry_server.username, registry_server.password, registry_server.host
    )
    engine = DockerEngine()
    with pytest.raises(EngineError):
        engine.pull(f"{fake_registry.host}/team/bound:1", login, lambda _line: None)
    with pytest.raises(EngineError):
        engine.registry_digest(f"{fake_registry.host}/team/bound:1", login)
    assert fake_registry.seen
    assert leaked(fake_registry, registry_server) == []
