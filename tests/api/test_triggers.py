"""Standalone triggers: kinds, uniqueness of (kind, name), tokens, secrets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Server, assert_error, create_workload, trigger_ids, unique

MASK = "**********"


def make_trigger(
    server: Server, kind: str, config: dict[str, Any] | None = None, name: str | None = None
) -> dict[str, Any]:
    body = {"kind": kind, "name": name or unique("t"), "config": config or {}}
    if kind == "schedule" and not config:
        body["config"] = {"cron": "0 3 * * *"}
    r = server.operator.post("/api/triggers", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def get_trigger(server: Server, trigger_id: str, as_: Api | None = None) -> dict[str, Any]:
    r = (as_ or server.operator).get(f"/api/triggers/{trigger_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def names(server: Server, kind: str | None = None) -> list[str]:
    params = {"kind": kind} if kind else {}
    r = server.viewer.get("/api/triggers", params=params)
    assert r.status_code == 200, r.text
    return [t["name"] for t in r.json()["items"]]


def test_create_webhook_answers_token_and_url(server: Server) -> None:
    name = unique("hook")
    r = server.operator.post(
        "/api/triggers", json={"kind": "webhook", "name": name, "config": {"provider": "github"}}
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["id"]
    assert t["kind"] == "webhook"
    assert t["name"] == name
    assert t["config"] == {"provider": "github", "rate_limit_per_minute": 60}
    assert t["has_secret"] is False
    assert t["workloads"] == []
    assert len(t["token"]) >= 32
    assert t["url"] == f"{server.url}/hooks/{t['token']}"
    assert get_trigger(server, t["id"]) == t


def test_webhook_tokens_differ(server: Server) -> None:
    first = make_trigger(server, "webhook")
    second = make_trigger(server, "webhook")
    assert first["token"] != second["token"]


def test_create_schedule(server: Server) -> None:
    t = make_trigger(server, "schedule", {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"})
    assert t["config"] == {"cron": "*/5 * * * *", "timezone": "Europe/Berlin", "action": "deploy"}
    assert t["token"] is None
    assert t["url"] is None
    assert get_trigger(server, t["id"]) == t


def test_create_image_poll_with_defaults(server: Server) -> None:
    t = make_trigger(server, "image-poll")
    assert t["config"] == {"interval_seconds": 300}
    assert t["token"] is None
    assert t["url"] is None


def test_list_filters_by_kind(server: Server) -> None:
    hook = make_trigger(server, "webhook")
    cron = make_trigger(server, "schedule")
    poll = make_trigger(server, "image-poll")
    for kind, mine, others in (
        ("webhook", hook, (cron, poll)),
        ("schedule", cron, (hook, poll)),
        ("image-poll", poll, (hook, cron)),
    ):
        items = server.viewer.get("/api/triggers", params={"kind": kind}).json()["items"]
        ids = {t["id"] for t in items}
        assert mine["id"] in ids
        assert not {o["id"] for o in others} & ids
        assert all(t["kind"] == kind for t in items)
    everything = {t["id"] for t in server.viewer.get("/api/triggers").json()["items"]}
    assert {hook["id"], cron["id"], poll["id"]} <= everything
    assert server.viewer.get("/api/triggers", params={"kind": "nope"}).json() == {"items": []}


def test_duplicate_kind_and_name_is_409(server: Server) -> None:
    first = make_trigger(server, "webhook", {"provider": "gitea"})
    r = server.operator.post(
        "/api/triggers",
        json={"kind": "webhook", "name": first["name"], "config": {"provider": "gitlab"}},
    )
    assert_error(r, 409, "duplicate")
    assert names(server, "webhook").count(first["name"]) == 1
    assert get_trigger(server, first["id"]) == first


def test_same_name_with_another_kind_is_fine(server: Server) -> None:
    name = unique("same")
    hook = make_trigger(server, "webhook", name=name)
    cron = make_trigger(server, "schedule", name=name)
    poll = make_trigger(server, "image-poll", name=name)
    assert len({hook["id"], cron["id"], poll["id"]}) == 3
    assert names(server).count(name) == 3


def test_viewer_sees_no_token_or_url(server: Server) -> None:
    hook = make_trigger(server, "webhook")
    seen = get_trigger(server, hook["id"], as_=server.viewer)
    assert seen["token"] is None
    assert seen["url"] is None
    r = server.viewer.get("/api/triggers", params={"kind": "webhook"})
    assert hook["token"] not in r.text
    listed = next(t for t in r.json()["items"] if t["id"] == hook["id"])
    assert listed["token"] is None
    assert listed["url"] is None
    # Operators and admins do see it.
    assert get_trigger(server, hook["id"], as_=server.admin)["token"] == hook["token"]


def test_secret_is_never_returned(server: Server) -> None:
    secret = "hook-secret-" + unique("s")
    r = server.operator.post(
        "/api/triggers",
        json={"kind": "webhook", "name": unique("t"), "config": {"secret": secret}},
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert secret not in r.text
    assert t["has_secret"] is True
    assert t["config"].get("secret", MASK) == MASK
    for who in (server.operator, server.viewer, server.admin):
        for path in (f"/api/triggers/{t['id']}", "/api/triggers?kind=webhook"):
            got = who.get(path)
            assert got.status_code == 200, got.text
            assert secret not in got.text
    r = server.operator.patch(f"/api/triggers/{t['id']}", json={"config": {"provider": "github"}})
    assert r.status_code == 200, r.text
    assert secret not in r.text
    assert r.json()["has_secret"] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "schedule", "config": {"cron": "61 * * * *"}}, "invalid_config"),
        ({"kind": "schedule", "config": {"cron": "every day"}}, "invalid_config"),
        ({"kind": "schedule", "config": {"cron": "* * * * * * *"}}, "invalid_config"),
        ({"kind": "schedule", "config": {}}, "invalid_config"),
        (
            {"kind": "schedule", "config": {"cron": "0 3 * * *", "timezone": "Mars/Olympus"}},
            "invalid_config",
        ),
        (
            {"kind": "schedule", "config": {"cron": "0 3 * * *", "action": "delete"}},
            "invalid_config",
        ),
        ({"kind": "webhook", "config": {"provider": "bitbucket"}}, "invalid_config"),
        ({"kind": "webhook", "config": {"secret": "short"}}, "invalid_config"),
        ({"kind": "webhook", "config": {"filters": {"branch": ""}}}, "invalid_config"),
        ({"kind": "webhook", "config": {"unknown": 1}}, "invalid_config"),
        ({"kind": "image-poll", "config": {"interval_seconds": 4}}, "invalid_config"),
        ({"kind": "carrier-pigeon", "config": {}}, "unknown_kind"),
        ({"kind": "webhook", "name": "Bad Name", "config": {}}, "invalid_slug"),
        ({"kind": "webhook", "config": [1]}, "invalid_request"),
        ({"kind": "webhook", "config": {}, "token": "mine"}, "invalid_request"),
    ],
)
def test_invalid_trigger_creates_nothing(server: Server, body: dict[str, Any], code: str) -> None:
    body = {"name": unique("bad"), **body}
    before = trigger_ids(server.viewer)
    assert_error(server.operator.post("/api/triggers", json=body), 422, code)
    assert trigger_ids(server.viewer) == before


def test_get_unknown_trigger_is_404(server: Server) -> None:
    assert_error(server.viewer.get("/api/triggers/tr_nope"), 404, "not_found")


def test_patch_name_and_config(server: Server) -> None:
    t = make_trigger(server, "webhook", {"provider": "github"})
    new = unique("renamed")
    r = server.operator.patch(
        f"/api/triggers/{t['id']}",
        json={"name": new, "config": {"filters": {"branch": "main"}}},
    )
    assert r.status_code == 200, r.text
    after = get_trigger(server, t["id"])
    assert after["name"] == new
    assert after["config"] == {
        "provider": "github",
        "filters": {"branch": "main"},
        "rate_limit_per_minute": 60,
    }
    assert after["token"] == t["token"]
    assert new in names(server, "webhook")
    assert t["name"] not in names(server, "webhook")


def test_patch_schedule_cron(server: Server) -> None:
    t = make_trigger(server, "schedule", {"cron": "0 3 * * *", "timezone": "UTC"})
    r = server.operator.patch(f"/api/triggers/{t['id']}", json={"config": {"cron": "30 4 * * 1"}})
    assert r.status_code == 200, r.text
    assert get_trigger(server, t["id"])["config"] == {
        "cron": "30 4 * * 1",
        "timezone": "UTC",
        "action": "deploy",
    }


def test_patch_secret_masked_echo_keeps_and_null_removes(server: Server) -> None:
    t = make_trigger(server, "webhook", {"secret": "first-secret-value"})
    url = f"/api/triggers/{t['id']}"
    r = server.operator.patch(url, json={"config": {**t["config"], "provider": "gitea"}})
    assert r.status_code == 200, r.text
    assert get_trigger(server, t["id"])["has_secret"] is True
    r = server.operator.patch(url, json={"config": {"secret": None}})
    assert r.status_code == 200, r.text
    after = get_trigger(server, t["id"])
    assert after["has_secret"] is False
    assert "secret" not in after["config"]
    assert after["config"]["provider"] == "gitea"


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"config": {"provider": "bitbucket"}}, "invalid_config"),
        ({"config": {"secret": "short"}}, "invalid_config"),
        ({"config": {"filters": {"tag": ""}}}, "invalid_config"),
        ({"name": "Not A Slug"}, "invalid_slug"),
        ({"name": "fine", "config": {"provider": "bitbucket"}}, "invalid_config"),
        ({"config": "string"}, "invalid_request"),
        ({"kind": "schedule"}, "invalid_request"),
    ],
)
def test_invalid_patch_changes_nothing(server: Server, patch: dict[str, Any], code: str) -> None:
    t = make_trigger(server, "webhook", {"provider": "github"})
    before = get_trigger(server, t["id"])
    r = server.operator.patch(f"/api/triggers/{t['id']}", json=patch)
    assert_error(r, 422, code)
    assert get_trigger(server, t["id"]) == before


def test_patch_to_a_taken_name_is_409(server: Server) -> None:
    first = make_trigger(server, "webhook")
    second = make_trigger(server, "webhook")
    before = get_trigger(server, second["id"])
    r = server.operator.patch(f"/api/triggers/{second['id']}", json={"name": first["name"]})
    assert_error(r, 409, "duplicate")
    assert get_trigger(server, second["id"]) == before


def test_patch_to_a_name_taken_by_another_kind_is_fine(server: Server) -> None:
    cron = make_trigger(server, "schedule")
    hook = make_trigger(server, "webhook")
    r = server.operator.patch(f"/api/triggers/{hook['id']}", json={"name": cron["name"]})
    assert r.status_code == 200, r.text
    assert get_trigger(server, hook["id"])["name"] == cron["name"]


def test_patch_unknown_trigger_is_404(server: Server) -> None:
    assert_error(server.operator.patch("/api/triggers/tr_nope", json={}), 404, "not_found")


def test_delete_removes_the_trigger_and_its_bindings(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    t = make_trigger(server, "webhook")
    r = server.operator.post(
        f"/api/workloads/{workload['id']}/triggers", json={"trigger_id": t["id"]}
    )
    assert r.status_code == 201, r.text
    r = server.operator.delete(f"/api/triggers/{t['id']}")
    assert r.status_code == 204, r.text
    assert_error(server.viewer.get(f"/api/triggers/{t['id']}"), 404, "not_found")
    assert t["name"] not in names(server, "webhook")
    bound = server.viewer.get(f"/api/workloads/{workload['id']}/triggers").json()
    assert bound == {"items": []}
    assert_error(server.operator.delete(f"/api/triggers/{t['id']}"), 404, "not_found")
    # The name is free again.
    make_trigger(server, "webhook", name=t["name"])


def test_viewer_cannot_create_change_or_delete(server: Server) -> None:
    t = make_trigger(server, "webhook")
    before = get_trigger(server, t["id"])
    name = unique("t")
    r = server.viewer.post("/api/triggers", json={"kind": "webhook", "name": name})
    assert_error(r, 403, "forbidden")
    assert name not in names(server)
    assert_error(server.viewer.patch(f"/api/triggers/{t['id']}", json={"name": name}), 403)
    assert_error(server.viewer.delete(f"/api/triggers/{t['id']}"), 403, "forbidden")
    assert get_trigger(server, t["id"]) == before
