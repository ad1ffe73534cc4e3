"""Every route x {no credentials, viewer, operator, admin, session without CSRF}.

The route list comes from the server's own OpenAPI document, so a new route
without an entry in ``MIN_ROLE`` fails this test instead of escaping it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Api, Server, create_workload, login, unique

PUBLIC = None
MIN_ROLE: dict[tuple[str, str], str | None] = {
    ("GET", "/api/healthz"): PUBLIC,
    ("POST", "/api/session"): PUBLIC,
    ("GET", "/api/session"): "viewer",
    ("DELETE", "/api/session"): "viewer",
    ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin",
    ("PATCH", "/api/users/{user_id}"): "admin",
    ("DELETE", "/api/users/{user_id}"): "admin",
    ("GET", "/api/tokens"): "viewer",
    ("POST", "/api/tokens"): "viewer",
    ("DELETE", "/api/tokens/{token_id}"): "viewer",
    ("GET", "/api/projects"): "viewer",
    ("POST", "/api/projects"): "admin",
    ("GET", "/api/projects/{slug}"): "viewer",
    ("PATCH", "/api/projects/{slug}"): "admin",
    ("DELETE", "/api/projects/{slug}"): "admin",
    ("GET", "/api/workloads"): "viewer",
    ("POST", "/api/workloads"): "operator",
    ("GET", "/api/workloads/{workload_id}"): "viewer",
    ("PATCH", "/api/workloads/{workload_id}"): "operator",
    ("DELETE", "/api/workloads/{workload_id}"): "admin",
    ("GET", "/api/workloads/{workload_id}/deployments"): "viewer",
    ("GET", "/api/workloads/{workload_id}/deployments/{deployment_id}"): "viewer",
    ("POST", "/api/workloads/{workload_id}/deploy"): "operator",
    ("POST", "/api/workloads/{workload_id}/promote-from"): "operator",
    ("POST", "/api/workloads/{workload_id}/reconcile"): "operator",
    ("POST", "/api/workloads/{workload_id}/stop"): "operator",
    ("POST", "/api/workloads/{workload_id}/start"): "operator",
    ("POST", "/api/workloads/{workload_id}/restart"): "operator",
    ("GET", "/api/workloads/{workload_id}/logs"): "operator",  # logs print secrets
    ("GET", "/api/workloads/{workload_id}/env"): "operator",
    ("PUT", "/api/workloads/{workload_id}/env"): "operator",
    ("GET", "/api/workloads/{workload_id}/env/{key}"): "operator",
    ("GET", "/api/workloads/{workload_id}/volumes"): "operator",
    ("PUT", "/api/workloads/{workload_id}/volumes"): "operator",
    ("GET", "/api/workloads/{workload_id}/chain"): "operator",
    ("PUT", "/api/workloads/{workload_id}/chain"): "operator",
    ("GET", "/api/workloads/{workload_id}/triggers"): "viewer",
    ("POST", "/api/workloads/{workload_id}/triggers"): "operator",
    ("DELETE", "/api/workloads/{workload_id}/triggers/{trigger_id}"): "operator",
    ("GET", "/api/triggers"): "viewer",
    ("POST", "/api/triggers"): "operator",
    ("GET", "/api/triggers/{trigger_id}"): "viewer",
    ("PATCH", "/api/triggers/{trigger_id}"): "operator",
    ("DELETE", "/api/triggers/{trigger_id}"): "operator",
    ("POST", "/api/triggers/{trigger_id}/token"): "operator",
    ("GET", "/api/triggers/{trigger_id}/deliveries"): "viewer",
    ("POST", "/hooks/{token}"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/workloads/{workload_id}/snapshots"): "operator",
    ("GET", "/api/workloads/{workload_id}/snapshots"): "viewer",
    ("GET", "/api/workloads/{workload_id}/snapshots/{snapshot_id}"): "viewer",
    ("GET", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/archive"): "operator",
    ("POST", "/api/workloads/{workload_id}/snapshots/import"): "admin",
    ("DELETE", "/api/workloads/{workload_id}/snapshots/{snapshot_id}"): "admin",
    ("POST", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/restore"): "admin",
    ("POST", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/clone"): "operator",
    ("POST", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/drills"): "operator",
    ("GET", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/drills"): "viewer",
    ("GET", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/drills/{drill_id}"): "viewer",
    ("GET", "/api/workloads/{workload_id}/drills"): "viewer",
    ("GET", "/api/drills/standings"): "viewer",
    ("POST", "/api/projects/{slug}/recovery-points"): "operator",
    ("GET", "/api/projects/{slug}/recovery-points"): "viewer",
    ("GET", "/api/projects/{slug}/recovery-points/{point_id}"): "viewer",
    ("POST", "/api/projects/{slug}/recovery-points/{point_id}/restore"): "admin",
    ("GET", "/api/workloads/{workload_id}/restores"): "viewer",
    ("GET", "/api/workloads/{workload_id}/restores/{restore_id}"): "viewer",
    ("GET", "/api/storage-targets"): "admin",
    ("POST", "/api/storage-targets"): "admin",
    ("GET", "/api/storage-targets/{target_id}"): "admin",
    ("PATCH", "/api/storage-targets/{target_id}"): "admin",
    ("DELETE", "/api/storage-targets/{target_id}"): "admin",
    ("POST", "/api/storage-targets/{target_id}/test"): "admin",
    ("GET", "/api/workloads/{workload_id}/offsite"): "viewer",
    ("PUT", "/api/workloads/{workload_id}/offsite"): "operator",
    ("DELETE", "/api/workloads/{workload_id}/offsite"): "operator",
    ("POST", "/api/workloads/{workload_id}/snapshots/{snapshot_id}/copies"): "operator",
    ("GET", "/api/storage-targets/{target_id}/catalog"): "admin",
    ("POST", "/api/storage-targets/{target_id}/catalog/{key}/import"): "admin",
    ("POST", "/api/instance/backups"): "admin",
    ("GET", "/api/kinds"): "viewer",
    ("GET", "/api/audit"): "admin",
    ("GET", "/api/workloads/{workload_id}/snapshot-hooks"): "operator",  # may hold secrets
    ("PUT", "/api/workloads/{workload_id}/snapshot-hooks"): "operator",
    ("POST", "/api/workloads/{workload_id}/deployments/{deployment_id}/rollback"): "operator",
    ("GET", "/api/workloads/{workload_id}/domains"): "viewer",
    ("PUT", "/api/workloads/{workload_id}/domains"): "operator",
    ("GET", "/api/proxy"): "viewer",
    ("GET", "/api/dns-providers"): "admin",
    ("PUT", "/api/dns-providers/{name}"): "admin",
    ("DELETE", "/api/dns-providers/{name}"): "admin",
}
RANK = {"viewer": 0, "operator": 1, "admin": 2}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def routes(server: Server) -> list[tuple[str, str]]:
    doc = server.anonymous.get("/api/openapi.json").json()
    return sorted((method.upper(), path) for path, ops in doc["paths"].items() for method in ops)


def test_every_route_has_an_expected_role(server: Server) -> None:
    listed = set(routes(server))
    assert listed - set(MIN_ROLE) == set(), "add the new routes to MIN_ROLE"
    assert set(MIN_ROLE) - listed == set(), "MIN_ROLE names routes that no longer exist"


@pytest.fixture(scope="module")
def targets(server: Server) -> dict[str, str]:
    """Real objects for denied calls to hit: a denial must be about the role, not a 404."""
    slug = unique("auth")
    assert server.admin.post("/api/projects", json={"slug": slug}).status_code == 201
    workload = create_workload(server, slug)
    trigger = server.operator.post(
        "/api/triggers", json={"kind": "webhook", "name": unique("auth"), "config": {}}
    ).json()
    r = server.operator.post(
        f"/api/workloads/{workload['id']}/triggers", json={"trigger_id": trigger["id"]}
    )
    assert r.status_code == 201, r.text
    return {
        "slug": slug,
        "workload_id": workload["id"],
        "trigger_id": trigger["id"],
        "deployment_id": "dp_missing",
        "token_id": "tk_missing",
        "user_id": "us_missing",
        "key": "MISSING_KEY",
        "token": "no-such-hook-token",
        "snapshot_id": "sn_missing",
        "restore_id": "rs_missing",
        "target_id": "st_missing",
        "point_id": "rp_missing",
        "drill_id": "dr_missing",
        "name": "no-such-provider",
    }


def fill(path: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    assert "{" not in path, path
    return path


def body_for(method: str, path: str) -> Any:
    if method not in {"POST", "PUT", "PATCH"}:
        return None
    if path.endswith("/volumes"):
        return []
    return {}


def snapshot(server: Server, targets: dict[str, str]) -> dict[str, Any]:
    """What a denied call must not change."""
    wid, tid, slug = targets["workload_id"], targets["trigger_id"], targets["slug"]
    admin = server.admin
    return {
        "project": admin.get(f"/api/projects/{slug}").json(),
        "workload": admin.get(f"/api/workloads/{wid}").json(),
        "env": admin.get(f"/api/workloads/{wid}/env").json(),
        "volumes": admin.get(f"/api/workloads/{wid}/volumes").json(),
        "chain": admin.get(f"/api/workloads/{wid}/chain").json(),
        "bindings": admin.get(f"/api/workloads/{wid}/triggers").json(),
        "trigger": admin.get(f"/api/triggers/{tid}").json(),
        "users": sorted(u["username"] for u in admin.get("/api/users").json()["items"]),
        "projects": sorted(p["slug"] for p in admin.get("/api/projects").json()["items"]),
    }


def call(api: Api | httpx.Client, method: str, path: str) -> httpx.Response:
    body = body_for(method, path)
    if isinstance(api, httpx.Client):
        return (
            api.request(method, path, json=body) if body is not None else api.request(method, path)
        )
    return api.request(method, path, json=body) if body is not None else api.request(method, path)


def test_denied_calls_are_401_or_403_and_change_nothing(
    server: Server, targets: dict[str, str]
) -> None:
    before = snapshot(server, targets)
    identities = {
        "anonymous": server.anonymous,
        "viewer": server.viewer,
        "operator": server.operator,
    }
    checked = 0
    for method, path in routes(server):
        need = MIN_ROLE[(method, path)]
        if need is None:
            continue
        url = fill(path, targets)
        for who, api in identities.items():
            if who != "anonymous" and RANK[who] >= RANK[need]:
                continue
            r = call(api, method, url)
            expected = 401 if who == "anonymous" else 403
            assert r.status_code == expected, (who, method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] in {"unauthenticated", "forbidden"}, r.text
            checked += 1
    assert checked > 40
    assert snapshot(server, targets) == before


def test_allowed_roles_are_never_refused(server: Server, targets: dict[str, str]) -> None:
    identities = {"viewer": server.viewer, "operator": server.operator, "admin": server.admin}
    # Allowed calls go to ids that do not exist, so the matrix destroys nothing it needs.
    missing = {
        **targets,
        "slug": "no-such-project",
        "workload_id": "wl_missing",
        "trigger_id": "tr_missing",
    }
    for method, path in routes(server):
        need = MIN_ROLE[(method, path)]
        if need is None or (method, path) == ("DELETE", "/api/session"):
            continue
        for who, api in identities.items():
            if RANK[who] < RANK[need]:
                continue
            r = call(api, method, fill(path, missing))
            assert r.status_code not in (401, 403), (who, method, path, r.text)
            assert r.status_code < 500, (who, method, path, r.text)


def test_session_cookie_without_csrf_header_cannot_mutate(
    server: Server, targets: dict[str, str]
) -> None:
    before = snapshot(server, targets)
    client = login(server.url, "admin", ADMIN_PASSWORD)
    try:
        csrf = client.headers.pop("X-CSRF-Token")
        # Reads work with the cookie alone.
        assert client.get(f"/api/workloads/{targets['workload_id']}").status_code == 200
        for method, path in routes(server):
            if method not in MUTATING or MIN_ROLE[(method, path)] is None:
                continue
            url = fill(path, targets)
            r = call(client, method, url)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"]["code"] == "csrf_failed"
            client.headers["X-CSRF-Token"] = "not-the-token"
            r = call(client, method, url)
            assert r.status_code == 403, (method, path, r.text)
            del client.headers["X-CSRF-Token"]
        assert snapshot(server, targets) == before
        # With the header, the same cookie may mutate.
        client.headers["X-CSRF-Token"] = csrf
        r = client.patch(f"/api/projects/{targets['slug']}", json={"description": "via session"})
        assert r.status_code == 200, r.text
    finally:
        client.close()


def test_bad_credentials_are_401(server: Server) -> None:
    for header in ("Bearer nope", "Basic YWRtaW46eA==", "Token abc"):
        r = server.anonymous.get("/api/workloads", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
    r = server.anonymous.post("/api/session", json={"username": "admin", "password": "wrong"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "bad_credentials"
    r = httpx.get(f"{server.url}/api/workloads", cookies={"moorage_session": "forged"})
    assert r.status_code == 401


def test_session_cookie_flags_and_logout(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/api/session", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 201
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = r.json()["csrf_token"]
        assert client.get("/api/session").json()["csrf_token"] == csrf
        assert client.delete("/api/session", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert client.get("/api/workloads").status_code == 401
