"""Shared fixtures: a real Moorage server process on a loopback port, and API clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from moorage.errors import CODES
from moorage.runtime.pins import Pins

REPO = Path(__file__).resolve().parent.parent
MOORAGE = str(Path(sys.executable).parent / "moorage")
ADMIN_PASSWORD = "admin-password-for-tests"
TEST_LABEL = "moorage.test"
RUN_ID = f"{os.getpid()}-{int(time.time())}"
SERVER_START_SECONDS = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Api:
    """An HTTP client bound to one identity against the test server."""

    base_url: str
    token: str | None = None

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as c:
            return c.request(method, path, **kwargs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


@dataclass
class Server:
    url: str
    data_dir: Path
    volume_root: Path
    env: dict[str, str]
    admin: Api
    operator: Api
    viewer: Api
    anonymous: Api

    def cli(
        self,
        *args: str,
        token: str | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        env["MOORAGE_URL"] = self.url
        if token is not None:
            env["MOORAGE_TOKEN"] = token
        return subprocess.run(
            [MOORAGE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )


def start_server(
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
    *,
    port: int | None = None,
) -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    """Start ``moorage serve``; everything it creates in Docker carries this run's label."""
    port = port or free_port()
    _DATA_DIRS.add(Path(data_dir).absolute())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env.update(
        MOORAGE_DATA_DIR=str(data_dir),
        MOORAGE_BIND=f"127.0.0.1:{port}",
        MOORAGE_ADMIN_PASSWORD=ADMIN_PASSWORD,
        MOORAGE_CONTAINER_LABELS=f"{TEST_LABEL}={RUN_ID}",
        MOORAGE_RECONCILE_SECONDS="2",
        MOORAGE_PROXY="none",  # the proxy tests start theirs (tests/proxy/)
        # Every test client, browser and tester of a worker is one address, 127.0.0.1,
        # standing for many users: its requests without a login are not paced the way
        # one real address's are. The pacing itself is tested on a server at the
        # default (tests/api/test_wear.py, ``api/pacing.py``).
        MOORAGE_ANONYMOUS_RATE="1000",
    )
    env.update(extra_env or {})  # may override the defaults above
    log_path = data_dir.parent / f"server-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [MOORAGE, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
    url = f"http://127.0.0.1:{port}"
    # Generous: parallel test workers start servers at once on a 2-core machine.
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/api/healthz", timeout=1).status_code == 200:
                return proc, url, env
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not become healthy in {SERVER_START_SECONDS} s")


def again(api: Api, url: str) -> Api:
    """``api``'s identity on a server started again (at ``url``) on the same data
    directory: its token is in that store, so no CLI run (a second of CPU) makes another."""
    return Api(url, api.token)


def admin_api(url: str, env: dict[str, str]) -> Api:
    """An admin client for a server started with ``env``, through the offline CLI."""
    out = subprocess.run(
        [MOORAGE, "token", "create", "--username", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Api(url, out.splitlines()[-1])


def wait_faulted(proc: subprocess.Popen[str], data_dir: Path, timeout: float = 240) -> None:
    """Wait for a server started with ``MOORAGE_FAULTPOINT`` to kill itself there (-9).
    Generous: on a loaded 2-core machine the work before the point can take minutes. On
    timeout the failure carries the server's log with every thread's stack (SIGUSR1,
    ``cli/serve``), so a run that never reached its point says where it waited."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        logs = sorted(Path(data_dir).parent.glob("server-*.log"))
        text = "\n".join(p.read_text(errors="replace")[-20000:] for p in logs)
        raise AssertionError(
            f"the server did not reach its fault point in {timeout} s; its log:\n{text}"
        ) from None
    assert proc.returncode == -9, f"the server exited {proc.returncode}, not at its fault point"


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def login(url: str, username: str, password: str) -> httpx.Client:
    """A client holding a session cookie, with the CSRF header set."""
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/api/session", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def make_user(admin: Api, url: str, username: str, role: str) -> Api:
    password = f"{username}-password"
    r = admin.post("/api/users", json={"username": username, "role": role, "password": password})
    assert r.status_code == 201, r.text
    client = login(url, username, password)
    try:
        r = client.post("/api/tokens", json={"name": "tests"})
    finally:
        client.close()
    assert r.status_code == 201, r.text
    return Api(url, r.json()["token"])


def remove_labelled_docker_objects() -> None:
    """Remove every container, network and volume this test run created (by its label)."""
    selector = f"label={TEST_LABEL}={RUN_ID}"
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", selector], capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    nets = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", selector], capture_output=True, text=True
    ).stdout.split()
    for net in nets:
        subprocess.run(["docker", "network", "rm", net], capture_output=True)
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", selector], capture_output=True, text=True
    ).stdout.split()
    if volumes:  # Compose named volumes (their containers are gone above)
        subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)


_DATA_DIRS: set[Path] = set()  # every data dir a test server ran on, for pin cleanup


def remove_pins() -> None:
    """Detach the volume pins of this run's servers: removing their containers above
    unpins them, but a server killed mid-test (the crash tests) leaves its pins."""
    run_dir = Path(os.environ.get("MOORAGE_RUN_DIR") or "/run/moorage")
    for data_dir in _DATA_DIRS:
        pins = Pins(run_dir, str(data_dir))
        for name in pins.containers():
            pins.unpin(name)


@pytest.fixture(scope="session", autouse=True)
def docker_cleanup() -> Iterator[None]:
    yield
    remove_labelled_docker_objects()
    remove_pins()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("server")
    data_dir = base / "var"
    volume_root = base / "roots"
    volume_root.mkdir()
    proc, url, env = start_server(data_dir, {"MOORAGE_VOLUME_ROOTS": str(volume_root)})
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


_counter = iter(range(10**9))


def unique(prefix: str) -> str:
    """A slug no other test in this run uses."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` under pytest 9: pytest-xdist 3.8 groups by an ``@group`` suffix
    it writes into ``item._nodeid``, which pytest 9 no longer reads (a node's id is the
    structured ``item._id``), so every ``xdist_group`` mark was ignored and, among others,
    four workers each started the proxy tests' Caddy on the same fixed ports. This writes
    the suffix into the id's string form, the one the controller schedules by."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        node_id = getattr(item, "_id", None)
        if names and node_id is not None and "@" not in item.nodeid:
            object.__setattr__(node_id, "_str_cache", f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(scope="session")
def web_built() -> None:
    """Run scripts/web.sh: installs the locked node packages and rebuilds a stale UI build."""
    subprocess.run([str(REPO / "scripts" / "web.sh")], check=True, timeout=600)


@pytest.fixture
def project(server: Server) -> Iterator[str]:
    """A new project on the session server; its workloads are deleted when the test ends."""
    slug = unique("p")
    r = server.admin.post("/api/projects", json={"slug": slug})
    assert r.status_code == 201, r.text
    yield slug
    clear_project(server, slug)


def clear_project(server: Server, slug: str) -> None:
    """Delete a project's workloads through the API, so their containers and stage
    networks go now. Left until the session ends, a run's hundreds of containers and
    networks (each network adds iptables chains Docker walks on every change) slowed every
    later Docker call: the suite took 25-28 min, and 22 with this teardown. Each delete is
    waited for (a busy workload holds it up to 60 s): one that ended during the next test
    would be an audit row that test did not make. Best effort: what fails is left to the session's
    label cleanup."""
    with server.admin.client() as client:
        client.timeout = httpx.Timeout(90)
        try:
            r = client.get("/api/workloads", params={"project": slug})
            items = r.json().get("items", []) if r.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return
        for item in items:
            try:
                client.delete(f"/api/workloads/{item['id']}", params={"purge_snapshots": "true"})
            except httpx.HTTPError:
                continue


def trigger_ids(api: Api) -> set[str]:
    """The ids of every trigger, as ``api`` lists them: what "nothing was created" compares
    (not the rows: another test's schedule may fire and change one meanwhile)."""
    return {t["id"] for t in api.get("/api/triggers").json()["items"]}


def create_workload(
    server: Server,
    project: str,
    *,
    name: str | None = None,
    stage: str = "production",
    kind: str = "image",
    config: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "name": name or unique("w"),
        "kind": kind,
        "project": project,
        "stage": stage,
        "config": config if config is not None else {"image": "moorage-test/httpd:1"},
        **extra,
    }
    r = server.operator.post("/api/workloads", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def workload(server: Server, project: str) -> dict[str, Any]:
    return create_workload(server, project)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An error answer: the status, Moorage's error shape, optionally its code; and the
    code is declared in ``errors.CODES`` with that status (the registry says what the API
    answers, so every error test of the suite checks it)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"], body
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error"]["code"] == code, body
    declared = CODES.get(body["error"]["code"])
    assert declared is not None, f"{body['error']['code']!r} is not declared in errors.CODES"
    assert declared.status == status or body["error"]["code"] == "http_error", (
        f"errors.CODES declares {body['error']['code']!r} as {declared.status}, not {status}"
    )
    return dict(body["error"])
