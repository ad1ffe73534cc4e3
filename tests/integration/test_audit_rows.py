"""Every mutating route writes exactly one audit row, naming who acted (SPEC section 9).

The route list comes from the server's OpenAPI document, as in ``test_auth_matrix``: a
new mutating route without a recipe here fails ``test_every_mutating_route_has_a_recipe``.
Each recipe prepares what its call needs, then the call runs alone and whatever work it
starts (a deploy, a capture, a restore) is waited for; the rows written meanwhile that
name its actor or its target must be exactly one, by its actor. The routes that used to
write more (a PATCH with ``keep_last`` that prunes, a promote, a bind that creates its
trigger) or none by a person (a manual reconcile) are among them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.test_auth_matrix import MUTATING, routes
from tests.conftest import ADMIN_PASSWORD, Api, Server, create_workload, login, unique
from tests.integration.helpers import deploy, wait_deployment, wait_until

Route = tuple[str, str]
EXEMPT: dict[Route, str] = {
    ("POST", "/hooks/{token}"): "a webhook fans out: one row per workload it queues, by its "
    "trigger (tests/api/test_hooks.py)",
}
IMAGE = "moorage-test/httpd:1"


@dataclass
class Call:
    """One prepared call: what to send, who acts, which targets its row names."""

    send: Callable[[], httpx.Response]
    actor: str
    targets: set[str]
    settle: Callable[[httpx.Response], None] = lambda _r: None
    cleanup: Callable[[], None] = lambda: None
    status: set[int] = field(default_factory=lambda: {200, 201, 202, 204})


@dataclass
class Fixture:
    server: Server
    project: str
    site: dict[str, Any]  # deployed, with a stage volume
    snapshot: str  # a ready snapshot of ``site``

    @property
    def admin(self) -> Api:
        return self.server.admin

    @property
    def operator(self) -> Api:
        return self.server.operator

    def url(self, path: str, **more: str) -> str:
        values = {"workload_id": self.site["id"], "snapshot_id": self.snapshot, **more}
        for key, value in values.items():
            path = path.replace("{" + key + "}", value)
        return path

    def workload(self, **config: Any) -> dict[str, Any]:
        return create_workload(self.server, self.project, config={"image": IMAGE, **config})

    def capture(self, workload_id: str) -> str:
        r = self.operator.post(f"/api/workloads/{workload_id}/snapshots", json={"mode": "none"})
        assert r.status_code == 202, r.text
        return wait_snapshot(self.operator, workload_id, r.json()["id"])

    def user(self) -> tuple[str, str]:
        name, password = unique("aud"), "audit-rows-password"
        r = self.admin.post(
            "/api/users", json={"username": name, "role": "viewer", "password": password}
        )
        assert r.status_code == 201, r.text
        return name, str(r.json()["id"])

    def trigger(self) -> str:
        r = self.operator.post(
            "/api/triggers", json={"kind": "webhook", "name": unique("aud"), "config": {}}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def wait_snapshot(api: Api, workload_id: str, snapshot_id: str) -> str:
    def ready() -> bool:
        got = api.get(f"/api/workloads/{workload_id}/snapshots/{snapshot_id}").json()
        assert got["status"] != "failed", got
        return bool(got["status"] == "ready")

    wait_until(ready, 60, f"snapshot {snapshot_id} ready")
    return snapshot_id


def settle_deploy(api: Api, workload_id: str) -> Callable[[httpx.Response], None]:
    def wait(r: httpx.Response) -> None:
        wait_deployment(api, workload_id, r.json()["id"])

    return wait


def with_volume(f: Fixture, workload: dict[str, Any]) -> None:
    r = f.operator.put(
        f"/api/workloads/{workload['id']}/volumes",
        json=[{"name": "data", "scope": "stage", "source": unique("d"), "target": "/data"}],
    )
    assert r.status_code == 200, r.text


# --- one recipe per mutating route --------------------------------------------------------


def login_call(f: Fixture) -> Call:
    name, _ = f.user()
    body = {"username": name, "password": "audit-rows-password"}
    return Call(lambda: f.server.anonymous.post("/api/session", json=body), name, {name})


def logout_call(f: Fixture) -> Call:
    client = login(f.server.url, "admin", ADMIN_PASSWORD)
    return Call(lambda: client.delete("/api/session"), "admin", {"admin"}, cleanup=client.close)


def users_call(f: Fixture, method: str) -> Call:
    if method == "POST":
        name = unique("aud")
        body = {"username": name, "role": "viewer", "password": "audit-rows-password"}
        return Call(lambda: f.admin.post("/api/users", json=body), "admin", {name})
    name, user_id = f.user()
    if method == "PATCH":
        return Call(
            lambda: f.admin.patch(f"/api/users/{user_id}", json={"role": "operator"}),
            "admin",
            {name},
        )
    return Call(lambda: f.admin.delete(f"/api/users/{user_id}"), "admin", {name})


def token_revoke_call(f: Fixture) -> Call:
    r = f.operator.post("/api/tokens", json={"name": unique("aud")})
    assert r.status_code == 201, r.text
    token_id = r.json()["id"]
    return Call(lambda: f.operator.delete(f"/api/tokens/{token_id}"), "olga", {"olga"})


def project_call(f: Fixture, method: str) -> Call:
    slug = unique("aud")
    if method == "POST":
        return Call(lambda: f.admin.post("/api/projects", json={"slug": slug}), "admin", {slug})
    assert f.admin.post("/api/projects", json={"slug": slug}).status_code == 201
    if method == "PATCH":
        send = lambda: f.admin.patch(f"/api/projects/{slug}", json={"description": "x"})  # noqa: E731
        return Call(send, "admin", {slug})
    return Call(lambda: f.admin.delete(f"/api/projects/{slug}"), "admin", {slug})


def create_call(f: Fixture) -> Call:
    body = {"name": unique("aud"), "kind": "image", "project": f.project, "stage": "production"}
    body["config"] = {"image": IMAGE}
    return Call(lambda: f.operator.post("/api/workloads", json=body), "olga", set())


def patch_call(f: Fixture) -> Call:
    """A rename with ``keep_last`` that prunes a snapshot: three rows before issue 13."""
    w = f.workload()
    with_volume(f, w)
    kept = [f.capture(w["id"]) for _ in range(2)]
    body = {"name": unique("renamed"), "keep_last": 1}

    def pruned(_r: httpx.Response) -> None:
        left = f.operator.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
        assert [s["id"] for s in left] == [kept[1]]

    return Call(
        lambda: f.operator.patch(f"/api/workloads/{w['id']}", json=body),
        "olga",
        {w["id"]},
        settle=pruned,
    )


def delete_call(f: Fixture) -> Call:
    w = f.workload()
    return Call(lambda: f.admin.delete(f"/api/workloads/{w['id']}"), "admin", {w["id"]})


WORKLOAD_ROUTES = {
    "/deploy",
    "/promote-from",
    "/reconcile",
    "/restart",
    "/start",
    "/stop",
    "/env",
    "/volumes",
    "/chain",
    "/triggers",
    "/triggers/{trigger_id}",
    "/snapshots",
    "/snapshots/import",
    "/snapshots/{snapshot_id}",
    "/snapshots/{snapshot_id}/restore",
}


def workload_call(f: Fixture, method: str, path: str) -> Call:
    """The routes below ``/api/workloads/{workload_id}``, on the deployed ``site``."""
    site, url = f.site["id"], f.url(path)
    tail = path.removeprefix("/api/workloads/{workload_id}")
    post = lambda **kw: lambda: f.operator.post(url, **kw)  # noqa: E731
    if tail == "/deploy":
        return Call(post(), "olga", {site}, settle=settle_deploy(f.operator, site))
    if tail == "/promote-from":
        target = f.workload()
        send = lambda: f.operator.post(  # noqa: E731
            f"/api/workloads/{target['id']}/promote-from", json={"source": site}
        )
        return Call(send, "olga", {target["id"]}, settle=settle_deploy(f.operator, target["id"]))
    if tail in ("/reconcile", "/restart", "/start"):
        return Call(post(), "olga", {site})
    if tail == "/stop":
        start = lambda: f.operator.post(f.url(path.replace("/stop", "/start")))  # noqa: E731
        return Call(post(), "olga", {site}, cleanup=lambda: _ok(start()))
    if tail == "/env":
        body = {"A": {"value": unique("v"), "secret": False}}
        return Call(lambda: f.operator.put(url, json=body), "olga", {site})
    if tail == "/volumes":
        now = [
            {k: v for k, v in item.items() if k not in ("host_path", "problem")}
            for item in f.operator.get(url).json()["items"]
        ]
        return Call(lambda: f.operator.put(url, json=now), "olga", {site})
    if tail == "/chain":
        other = f.workload()
        return Call(lambda: f.operator.put(url, json={"next": [other["id"]]}), "olga", {site})
    if tail == "/triggers":  # creates the trigger it binds: two records, one row
        inline = {"kind": "webhook", "name": unique("aud"), "config": {}}
        return Call(post(json={"trigger": inline}), "olga", {site})
    if tail == "/triggers/{trigger_id}":
        tid = f.trigger()
        assert f.operator.post(url.rsplit("/", 1)[0], json={"trigger_id": tid}).status_code == 201
        return Call(lambda: f.operator.delete(f.url(path, trigger_id=tid)), "olga", {site})
    if tail == "/snapshots":

        def ready(r: httpx.Response) -> None:
            wait_snapshot(f.operator, site, r.json()["id"])

        return Call(post(json={"mode": "none"}), "olga", {site}, settle=ready)
    if tail == "/snapshots/import":
        archive = f.admin.get(f.url(path.replace("/import", "/{snapshot_id}/archive"))).content
        send = lambda: f.admin.post(  # noqa: E731
            url, content=archive, headers={"Content-Type": "application/zstd"}
        )
        return Call(send, "admin", {site})
    if tail == "/snapshots/{snapshot_id}":
        doomed = f.capture(site)
        return Call(lambda: f.admin.delete(f.url(path, snapshot_id=doomed)), "admin", {site})
    if tail == "/snapshots/{snapshot_id}/restore":
        headers = {"X-Confirm-Restore": f.site["name"]}

        def done(r: httpx.Response) -> None:
            def ended() -> bool:
                got = f.admin.get(f"/api/workloads/{site}/restores/{r.json()['id']}").json()
                return bool(got["status"] != "running")

            wait_until(ended, 120, "the restore to end")

        return Call(lambda: f.admin.post(url, headers=headers), "admin", {site}, settle=done)
    raise KeyError(path)


def trigger_call(f: Fixture, method: str, path: str) -> Call:
    if (method, path) == ("POST", "/api/triggers"):
        body = {"kind": "webhook", "name": unique("aud"), "config": {}}
        return Call(lambda: f.operator.post(path, json=body), "olga", set())
    tid = f.trigger()
    url = path.replace("{trigger_id}", tid)
    body = {"name": unique("aud")} if method == "PATCH" else None
    return Call(lambda: f.operator.request(method, url, json=body), "olga", {tid})


def storage_body() -> dict[str, Any]:
    return {
        "name": unique("aud"),
        "kind": "local",
        "config": {"path": f"/tmp/moorage-audit-targets/{unique('t')}"},
        "passphrase": "audit rows passphrase",
    }


def storage_call(f: Fixture, method: str, path: str) -> Call:
    if (method, path) == ("POST", "/api/storage-targets"):
        body = storage_body()
        return Call(lambda: f.admin.post(path, json=body), "admin", set())
    r = f.admin.post("/api/storage-targets", json=storage_body())
    assert r.status_code == 201, r.text
    tid = str(r.json()["id"])
    url = path.replace("{target_id}", tid)
    body = {"name": unique("aud")} if method == "PATCH" else None
    return Call(lambda: f.admin.request(method, url, json=body), "admin", {tid})


def dns_call(f: Fixture, method: str, path: str) -> Call:
    name = unique("dns")
    body = {
        "kind": "rfc2136",
        "config": {
            "server": "127.0.0.1:53",
            "zone": "audit.example",
            "key_name": "audit",
            "key_secret": "YXVkaXQgcm93cw==",
        },
    }
    url = path.replace("{name}", name)
    if method == "PUT":
        return Call(lambda: f.admin.put(url, json=body), "admin", {name})
    _ok(f.admin.put(url, json=body))
    return Call(lambda: f.admin.delete(url), "admin", {name})


def local_target(f: Fixture) -> str:
    r = f.admin.post("/api/storage-targets", json=storage_body())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def copy_state(f: Fixture, workload_id: str, snapshot_id: str, target: str) -> str:
    got = f.admin.get(f"/api/workloads/{workload_id}/snapshots/{snapshot_id}").json()
    return next((str(c["status"]) for c in got["copies"] if c["target_id"] == target), "")


def offsite_call(f: Fixture, method: str, path: str) -> Call:
    """A workload of its own, so the site's snapshots are not copied meanwhile."""
    w = f.workload()
    url, body = f.url(path, workload_id=w["id"]), {"target_id": local_target(f)}
    if method == "PUT":
        return Call(lambda: f.operator.put(url, json=body), "olga", {w["id"]})
    _ok(f.operator.put(url, json=body))
    return Call(lambda: f.operator.delete(url), "olga", {w["id"]})


def copy_call(f: Fixture, path: str) -> Call:
    site, target = f.site["id"], local_target(f)

    def verified(_r: httpx.Response) -> None:
        done = lambda: copy_state(f, site, f.snapshot, target) in ("verified", "failed")  # noqa: E731
        wait_until(done, 120, "the copy")
        assert copy_state(f, site, f.snapshot, target) == "verified"

    send = lambda: f.operator.post(f.url(path), json={"target_id": target})  # noqa: E731
    return Call(send, "olga", {site}, settle=verified)


def catalog_import_call(f: Fixture, path: str) -> Call:
    site, target = f.site["id"], local_target(f)
    _ok(
        f.operator.post(
            f.url("/api/workloads/{workload_id}/snapshots/{snapshot_id}/copies"),
            json={"target_id": target},
        )
    )
    wait_until(lambda: copy_state(f, site, f.snapshot, target) == "verified", 120, "the copy")
    [entry] = f.admin.get(f"/api/storage-targets/{target}/catalog").json()["items"]
    url = path.replace("{target_id}", target).replace("{key}", entry["key"])
    return Call(lambda: f.admin.post(url), "admin", {site})


def instance_backup_call(f: Fixture) -> Call:
    body = {"target_id": local_target(f)}
    return Call(lambda: f.admin.post("/api/instance/backups", json=body), "admin", set())


def hooks_call(f: Fixture, path: str) -> Call:
    w = f.workload()
    url = f.url(path, workload_id=w["id"])
    body = {"before": {"command": ["true"]}}
    return Call(lambda: f.operator.put(url, json=body), "olga", {w["id"]})


def domains_call(f: Fixture, path: str) -> Call:
    w = f.workload(ports=[{"container": 8080}])
    url = f.url(path, workload_id=w["id"])
    body = [{"host": f"{unique('aud')}.example.com", "port": 8080, "tls": "off"}]
    return Call(lambda: f.operator.put(url, json=body), "olga", {w["id"]})


def clone_call(f: Fixture, path: str) -> Call:
    body = {"name": unique("clone"), "deploy": False}
    return Call(lambda: f.operator.post(f.url(path), json=body), "olga", {f.site["id"]})


def drill_call(f: Fixture, path: str) -> Call:
    site = f.site["id"]

    def ended(r: httpx.Response) -> None:
        url = f"{f.url(path)}/{r.json()['id']}"
        wait_until(lambda: f.operator.get(url).json()["status"] != "running", 120, "the drill")

    return Call(lambda: f.operator.post(f.url(path)), "olga", {site}, settle=ended)


def rollback_call(f: Fixture, path: str) -> Call:
    site = f.site["id"]
    items = f.operator.get(f"/api/workloads/{site}/deployments").json()["items"]
    first = min((d for d in items if d["status"] == "succeeded"), key=lambda d: d["created_at"])
    url = f.url(path, deployment_id=first["id"])

    def deployed(r: httpx.Response) -> None:
        wait_deployment(f.operator, site, r.json()["deployment"]["id"])

    return Call(lambda: f.operator.post(url, json={}), "olga", {site}, settle=deployed)


def point_call(f: Fixture, method: str, path: str) -> Call:
    """A project of its own with one deployed workload holding a volume."""
    slug = unique("aud")
    _ok(f.admin.post("/api/projects", json={"slug": slug}))
    w = create_workload(f.server, slug, config={"image": IMAGE})
    with_volume(f, w)
    assert deploy(f.operator, w["id"])["status"] == "succeeded"
    base = f"/api/projects/{slug}/recovery-points"

    def status(pid: str, field_: str = "status") -> str:
        return str(f.admin.get(f"{base}/{pid}").json()[field_])

    def captured(pid: str) -> None:
        wait_until(lambda: status(pid) != "capturing", 120, "the recovery point")
        assert status(pid) == "ready"

    body = {"stage": "production", "mode": "none"}
    if path.endswith("/recovery-points"):
        send = lambda: f.operator.post(base, json=body)  # noqa: E731
        return Call(send, "olga", {slug, w["id"]}, settle=lambda r: captured(r.json()["id"]))
    r = f.operator.post(base, json=body)
    assert r.status_code == 202, r.text
    pid = str(r.json()["id"])
    captured(pid)
    headers = {"X-Confirm-Restore": f"{slug}/production"}

    def restored(_r: httpx.Response) -> None:
        wait_until(lambda: status(pid, "restore_status") != "running", 180, "the restore")

    send = lambda: f.admin.post(f"{base}/{pid}/restore", headers=headers)  # noqa: E731
    return Call(send, "admin", {slug, w["id"]}, settle=restored)


SUB_ROUTES: dict[str, Callable[[Fixture, str, str], Call]] = {
    "/offsite": offsite_call,
    "/snapshot-hooks": lambda f, _m, p: hooks_call(f, p),
    "/domains": lambda f, _m, p: domains_call(f, p),
    "/snapshots/{snapshot_id}/clone": lambda f, _m, p: clone_call(f, p),
    "/snapshots/{snapshot_id}/copies": lambda f, _m, p: copy_call(f, p),
    "/snapshots/{snapshot_id}/drills": lambda f, _m, p: drill_call(f, p),
    "/deployments/{deployment_id}/rollback": lambda f, _m, p: rollback_call(f, p),
}


def recipe(method: str, path: str) -> Callable[[Fixture], Call]:
    """What prepares a call of the route; KeyError for a route without one."""
    if path == "/api/session":
        return login_call if method == "POST" else logout_call
    if path.startswith("/api/users"):
        return lambda f: users_call(f, method)
    if (method, path) == ("POST", "/api/tokens"):
        return lambda f: Call(
            lambda: f.operator.post("/api/tokens", json={"name": unique("aud")}), "olga", {"olga"}
        )
    if (method, path) == ("DELETE", "/api/tokens/{token_id}"):
        return token_revoke_call
    if "/recovery-points" in path:
        return lambda f: point_call(f, method, path)
    if path.startswith("/api/projects"):
        return lambda f: project_call(f, method)
    if path == "/api/workloads":
        return create_call
    if path == "/api/workloads/{workload_id}":
        return patch_call if method == "PATCH" else delete_call
    tail = path.removeprefix("/api/workloads/{workload_id}")
    if tail in WORKLOAD_ROUTES:
        return lambda f: workload_call(f, method, path)
    if path.startswith("/api/workloads/") and tail in SUB_ROUTES:
        return lambda f: SUB_ROUTES[tail](f, method, path)
    if path.startswith("/api/dns-providers/"):
        return lambda f: dns_call(f, method, path)
    if path == "/api/instance/backups":
        return instance_backup_call
    if "/catalog/" in path:
        return lambda f: catalog_import_call(f, path)
    if path.startswith("/api/triggers"):
        return lambda f: trigger_call(f, method, path)
    if path.startswith("/api/storage-targets"):
        return lambda f: storage_call(f, method, path)
    raise KeyError((method, path))


def _ok(r: httpx.Response) -> None:
    assert r.status_code < 300, r.text


# --- the tests --------------------------------------------------------------------------


def mutating(server: Server) -> list[Route]:
    return [(m, p) for m, p in routes(server) if m in MUTATING and (m, p) not in EXEMPT]


@pytest.fixture(scope="module")
def fixture(server: Server) -> Fixture:
    project = unique("aud")
    assert server.admin.post("/api/projects", json={"slug": project}).status_code == 201
    site = create_workload(server, project, config={"image": IMAGE})
    made = Fixture(server, project, site, "")
    with_volume(made, site)
    assert deploy(server.operator, site["id"])["status"] == "succeeded"
    made.snapshot = made.capture(site["id"])
    return made


def test_every_mutating_route_has_a_recipe(server: Server) -> None:
    listed = set(routes(server))
    assert set(EXEMPT) <= listed, "EXEMPT names routes that no longer exist"
    for method, path in mutating(server):
        try:
            recipe(method, path)
        except KeyError:
            pytest.fail(f"add a recipe for {method} {path}")


def latest_id(server: Server) -> int:
    items = server.admin.get("/api/audit", params={"limit": 1}).json()["items"]
    return int(items[0]["id"]) if items else 0


def rows_since(server: Server, mark: int) -> list[dict[str, Any]]:
    items = server.admin.get("/api/audit", params={"limit": 500}).json()["items"]
    return [r for r in items if r["id"] > mark]


def test_each_mutating_route_writes_exactly_one_row_naming_its_actor(
    server: Server, fixture: Fixture
) -> None:
    wrong: list[str] = []
    checked = 0
    for method, path in mutating(server):
        call = recipe(method, path)(fixture)
        mark = latest_id(server)
        r = call.send()
        assert r.status_code in call.status, (method, path, r.status_code, r.text)
        call.settle(r)
        time.sleep(0.1)
        mine = [
            row
            for row in rows_since(server, mark)
            if row["actor"] == call.actor or row["target_id"] in call.targets
        ]
        summary = [(row["actor"], row["action"], row["target_id"]) for row in mine]
        if len(mine) != 1 or mine[0]["actor"] != call.actor:
            wrong.append(f"{method} {path}: {summary}")
        call.cleanup()
        checked += 1
    assert checked > 30
    assert wrong == [], "\n".join(wrong)
