"""Users managed by admins: roles change at once, deletion ends access, the last admin stays."""

from __future__ import annotations

from contextlib import closing
from typing import Any

from tests.conftest import Api, Server, assert_error, login, unique


def make_user(server: Server, role: str = "viewer") -> tuple[dict[str, Any], Api]:
    name = unique("user")
    r = server.admin.post(
        "/api/users", json={"username": name, "role": role, "password": "password-123"}
    )
    assert r.status_code == 201, r.text
    with closing(login(server.url, name, "password-123")) as web:
        r2 = web.post("/api/tokens", json={"name": "t"})
    assert r2.status_code == 201, r2.text
    return r.json(), Api(server.url, r2.json()["token"])


def users(server: Server) -> dict[str, str]:
    return {u["username"]: u["role"] for u in server.admin.get("/api/users").json()["items"]}


def test_role_change_takes_effect_on_existing_tokens(server: Server) -> None:
    user, api = make_user(server, "viewer")
    assert_error(api.post("/api/triggers", json={}), 403, "forbidden")
    r = server.admin.patch(f"/api/users/{user['id']}", json={"role": "operator"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "operator"
    assert users(server)[user["username"]] == "operator"
    # the same token may now do operator work (422: the body is invalid, not forbidden)
    assert_error(api.post("/api/triggers", json={}), 422)


def test_new_password_ends_sessions_and_old_password(server: Server) -> None:
    user, _ = make_user(server)
    with closing(login(server.url, user["username"], "password-123")) as web:
        assert web.get("/api/session").status_code == 200
        r = server.admin.patch(f"/api/users/{user['id']}", json={"password": "another-pass-9"})
        assert r.status_code == 200, r.text
        assert_error(web.get("/api/session"), 401)
        body = {"username": user["username"], "password": "password-123"}
        assert_error(web.post("/api/session", json=body), 401, "bad_credentials")
    with closing(login(server.url, user["username"], "another-pass-9")) as web:
        assert web.get("/api/session").json()["user"]["username"] == user["username"]


def test_delete_user_revokes_their_tokens(server: Server) -> None:
    user, api = make_user(server)
    assert api.get("/api/workloads").status_code == 200
    assert server.admin.request("DELETE", f"/api/users/{user['id']}").status_code == 204
    assert user["username"] not in users(server)
    assert_error(api.get("/api/workloads"), 401)
    assert_error(server.admin.request("DELETE", f"/api/users/{user['id']}"), 404, "not_found")


def test_last_admin_cannot_be_demoted_or_deleted(server: Server) -> None:
    me = server.admin.get("/api/session").json()["user"]
    # other admins may exist from other tests: demote a fresh admin while it is not the last
    other, other_api = make_user(server, "admin")
    admins = [n for n, role in users(server).items() if role == "admin"]
    assert len(admins) >= 2
    # An admin cannot delete their own account, whatever the count.
    assert_error(other_api.request("DELETE", f"/api/users/{other['id']}"), 409, "own_account")
    assert other["username"] in users(server)
    assert server.admin.request("DELETE", f"/api/users/{other['id']}").status_code == 204
    # Demote every other admin, then the remaining one refuses.
    for name, role in users(server).items():
        if role == "admin" and name != me["username"]:
            uid = next(
                u["id"]
                for u in server.admin.get("/api/users").json()["items"]
                if u["username"] == name
            )
            server.admin.patch(f"/api/users/{uid}", json={"role": "operator"})
    before = users(server)
    assert_error(
        server.admin.patch(f"/api/users/{me['id']}", json={"role": "viewer"}), 409, "last_admin"
    )
    assert users(server) == before


def test_invalid_patches_change_nothing(server: Server) -> None:
    user, _ = make_user(server)
    before = users(server)
    assert_error(server.admin.patch(f"/api/users/{user['id']}", json={"role": "root"}), 422)
    assert_error(
        server.admin.patch(f"/api/users/{user['id']}", json={"password": "short"}),
        422,
        "weak_password",
    )
    assert_error(server.admin.patch(f"/api/users/{user['id']}", json={"bogus": 1}), 422)
    assert_error(server.admin.patch("/api/users/us_missing", json={"role": "viewer"}), 404)
    assert users(server) == before
