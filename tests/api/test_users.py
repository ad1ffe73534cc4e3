"""Users managed by admins: roles change at once, deletion ends access, the last admin
stays; each user's API tokens and web sessions are bounded."""

from __future__ import annotations

from contextlib import closing
from typing import Any

from moorage.services.users import MAX_SESSIONS, MAX_TOKENS
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


def token_names(api: Api) -> list[str]:
    return [t["name"] for t in api.get("/api/tokens").json()["items"]]


def test_a_viewer_holds_at_most_max_tokens(server: Server) -> None:
    """The report: a viewer made 300 tokens in 2.8 s, each 201 with an audit row."""
    _, viewer = make_user(server)  # holds one token already
    _, other = make_user(server)
    for i in range(MAX_TOKENS - 1):
        assert viewer.post("/api/tokens", json={"name": f"t{i}"}).status_code == 201
    held = viewer.get("/api/tokens").json()["items"]
    assert len(held) == MAX_TOKENS
    audited = server.admin.get("/api/audit", params={"limit": 1}).json()
    error = assert_error(viewer.post("/api/tokens", json={"name": "over"}), 409, "token_limit")
    assert "revoke one" in error["message"] and error["details"] == {"limit": MAX_TOKENS}
    assert viewer.get("/api/tokens").json()["items"] == held
    assert server.admin.get("/api/audit", params={"limit": 1}).json() == audited
    # Another user still gets one; revoking one of the viewer's lets exactly one more in.
    assert other.post("/api/tokens", json={"name": "mine"}).status_code == 201
    revoked = held[1]  # "t0": held[0] is the token this client sends
    assert revoked["name"] == "t0"
    assert viewer.delete(f"/api/tokens/{revoked['id']}").status_code == 204
    assert viewer.post("/api/tokens", json={"name": "again"}).status_code == 201
    assert_error(viewer.post("/api/tokens", json={"name": "over"}), 409, "token_limit")
    assert token_names(viewer) == ["t", *(f"t{i}" for i in range(1, MAX_TOKENS - 1)), "again"]


def test_logins_past_the_bound_end_the_oldest_session(server: Server) -> None:
    user, _ = make_user(server)
    clients = [login(server.url, user["username"], "password-123") for _ in range(MAX_SESSIONS)]
    try:
        assert all(c.get("/api/session").status_code == 200 for c in clients)
        clients.append(login(server.url, user["username"], "password-123"))
        assert_error(clients[0].get("/api/session"), 401, "session_expired")
        for client in clients[1:]:
            assert client.get("/api/session").json()["user"]["username"] == user["username"]
    finally:
        for client in clients:
            client.close()
