"""Bindings: a trigger bound to workloads, seen from the workload."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, unique


def bindings_url(workload: dict[str, Any]) -> str:
    return f"/api/workloads/{workload['id']}/triggers"


def bound_ids(server: Server, workload: dict[str, Any]) -> list[str]:
    r = server.viewer.get(bindings_url(workload))
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["items"]]


def all_triggers(server: Server) -> dict[str, Any]:
    r = server.operator.get("/api/triggers")
    assert r.status_code == 200, r.text
    return {t["id"]: t for t in r.json()["items"]}


def make_trigger(server: Server, kind: str = "webhook") -> dict[str, Any]:
    config = {"cron": "0 3 * * *"} if kind == "schedule" else {}
    r = server.operator.post(
        "/api/triggers", json={"kind": kind, "name": unique("t"), "config": config}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def bind(server: Server, workload: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    r = server.operator.post(bindings_url(workload), json={"trigger_id": trigger_id})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_new_workload_has_no_bindings(server: Server, workload: dict[str, Any]) -> None:
    assert bound_ids(server, workload) == []


def test_bind_an_existing_trigger(server: Server, workload: dict[str, Any]) -> None:
    t = make_trigger(server)
    answer = bind(server, workload, t["id"])
    assert answer["id"] == t["id"]
    assert answer["workloads"] == [workload["id"]]
    assert answer["token"] == t["token"]
    assert bound_ids(server, workload) == [t["id"]]
    r = server.viewer.get(f"/api/triggers/{t['id']}")
    assert r.json()["workloads"] == [workload["id"]]


def test_bind_creates_a_trigger_inline(server: Server, workload: dict[str, Any]) -> None:
    name = unique("inline")
    r = server.operator.post(
        bindings_url(workload),
        json={"trigger": {"kind": "schedule", "name": name, "config": {"cron": "15 2 * * *"}}},
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["kind"] == "schedule"
    assert t["name"] == name
    assert t["config"]["cron"] == "15 2 * * *"
    assert t["workloads"] == [workload["id"]]
    assert bound_ids(server, workload) == [t["id"]]
    assert all_triggers(server)[t["id"]]["workloads"] == [workload["id"]]


def test_bind_an_inline_webhook_answers_its_url(server: Server, workload: dict[str, Any]) -> None:
    r = server.operator.post(
        bindings_url(workload),
        json={"trigger": {"kind": "webhook", "name": unique("inline"), "config": {}}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["url"] == f"{server.url}/hooks/{r.json()['token']}"


def test_one_trigger_fans_out_to_many_workloads(server: Server, project: str) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project, stage="staging")
    t = make_trigger(server)
    bind(server, first, t["id"])
    answer = bind(server, second, t["id"])
    assert set(answer["workloads"]) == {first["id"], second["id"]}
    assert bound_ids(server, first) == [t["id"]]
    assert bound_ids(server, second) == [t["id"]]


def test_list_shows_every_bound_trigger(server: Server, workload: dict[str, Any]) -> None:
    hook, cron, poll = (
        make_trigger(server),
        make_trigger(server, "schedule"),
        make_trigger(server, "image-poll"),
    )
    unbound = make_trigger(server)
    for t in (hook, cron, poll):
        bind(server, workload, t["id"])
    ids = bound_ids(server, workload)
    assert sorted(ids) == sorted([hook["id"], cron["id"], poll["id"]])
    assert unbound["id"] not in ids


def test_viewer_list_hides_the_token(server: Server, workload: dict[str, Any]) -> None:
    t = make_trigger(server)
    bind(server, workload, t["id"])
    r = server.viewer.get(bindings_url(workload))
    assert t["token"] not in r.text
    assert r.json()["items"][0]["token"] is None
    assert r.json()["items"][0]["url"] is None


def test_binding_twice_is_409(server: Server, workload: dict[str, Any]) -> None:
    t = make_trigger(server)
    bind(server, workload, t["id"])
    r = server.operator.post(bindings_url(workload), json={"trigger_id": t["id"]})
    assert_error(r, 409, "already_bound")
    assert bound_ids(server, workload) == [t["id"]]
    assert all_triggers(server)[t["id"]]["workloads"] == [workload["id"]]


def test_unknown_trigger_is_422(server: Server, workload: dict[str, Any]) -> None:
    t = make_trigger(server)
    bind(server, workload, t["id"])
    r = server.operator.post(bindings_url(workload), json={"trigger_id": "tr_doesnotexist"})
    assert_error(r, 422, "unknown_trigger")
    assert bound_ids(server, workload) == [t["id"]]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_binding"),
        ({"trigger_id": None, "trigger": None}, "invalid_binding"),
        ({"trigger_id": "tr_x", "trigger": {"kind": "webhook", "name": "x"}}, "invalid_binding"),
        ({"trigger_id": 5}, "invalid_request"),
        ({"trigger_id": "x" * 33}, "invalid_request"),
        ({"trigger": {"kind": "webhook", "name": "x", "extra": 1}}, "invalid_request"),
        ({"workload_id": "wl_x"}, "invalid_request"),
    ],
)
def test_malformed_bind_bodies(
    server: Server, workload: dict[str, Any], body: dict[str, Any], code: str
) -> None:
    before = all_triggers(server)
    assert_error(server.operator.post(bindings_url(workload), json=body), 422, code)
    assert bound_ids(server, workload) == []
    assert all_triggers(server) == before


@pytest.mark.parametrize(
    ("trigger", "code"),
    [
        ({"kind": "schedule", "config": {"cron": "nope"}}, "invalid_config"),
        ({"kind": "pigeon", "config": {}}, "unknown_kind"),
        ({"kind": "webhook", "name": "Bad Name", "config": {}}, "invalid_slug"),
    ],
)
def test_invalid_inline_trigger_creates_nothing(
    server: Server, workload: dict[str, Any], trigger: dict[str, Any], code: str
) -> None:
    before = all_triggers(server)
    body = {"trigger": {"name": unique("inline"), **trigger}}
    assert_error(server.operator.post(bindings_url(workload), json=body), 422, code)
    assert bound_ids(server, workload) == []
    assert all_triggers(server) == before


def test_inline_trigger_with_a_taken_name_is_409(server: Server, workload: dict[str, Any]) -> None:
    existing = make_trigger(server)
    before = all_triggers(server)
    r = server.operator.post(
        bindings_url(workload),
        json={"trigger": {"kind": "webhook", "name": existing["name"], "config": {}}},
    )
    assert_error(r, 409, "duplicate")
    assert bound_ids(server, workload) == []
    assert all_triggers(server) == before


def test_inline_trigger_on_unknown_workload_creates_nothing(server: Server) -> None:
    before = all_triggers(server)
    r = server.operator.post(
        "/api/workloads/wl_doesnotexist/triggers",
        json={"trigger": {"kind": "webhook", "name": unique("orphan"), "config": {}}},
    )
    assert_error(r, 404, "not_found")
    assert all_triggers(server) == before


def test_bindings_of_unknown_workload_are_404(server: Server) -> None:
    t = make_trigger(server)
    assert_error(server.viewer.get("/api/workloads/wl_nope/triggers"), 404, "not_found")
    r = server.operator.post("/api/workloads/wl_nope/triggers", json={"trigger_id": t["id"]})
    assert_error(r, 404, "not_found")
    assert all_triggers(server)[t["id"]]["workloads"] == []


def test_unbind_then_404(server: Server, workload: dict[str, Any]) -> None:
    kept = make_trigger(server)
    dropped = make_trigger(server)
    bind(server, workload, kept["id"])
    bind(server, workload, dropped["id"])
    r = server.operator.delete(f"{bindings_url(workload)}/{dropped['id']}")
    assert r.status_code == 204, r.text
    assert bound_ids(server, workload) == [kept["id"]]
    # The trigger itself stays.
    assert all_triggers(server)[dropped["id"]]["workloads"] == []
    r = server.operator.delete(f"{bindings_url(workload)}/{dropped['id']}")
    assert_error(r, 404, "not_found")
    assert bound_ids(server, workload) == [kept["id"]]


def test_unbind_a_trigger_bound_elsewhere_is_404(server: Server, project: str) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project)
    t = make_trigger(server)
    bind(server, first, t["id"])
    r = server.operator.delete(f"{bindings_url(second)}/{t['id']}")
    assert_error(r, 404, "not_found")
    assert bound_ids(server, first) == [t["id"]]


def test_a_deleted_workload_loses_its_bindings(server: Server, project: str) -> None:
    gone = create_workload(server, project)
    stays = create_workload(server, project)
    t = make_trigger(server)
    bind(server, gone, t["id"])
    bind(server, stays, t["id"])
    assert server.admin.delete(f"/api/workloads/{gone['id']}").status_code == 204
    assert all_triggers(server)[t["id"]]["workloads"] == [stays["id"]]


def test_viewer_cannot_bind_or_unbind(server: Server, workload: dict[str, Any]) -> None:
    t = make_trigger(server)
    r = server.viewer.post(bindings_url(workload), json={"trigger_id": t["id"]})
    assert_error(r, 403, "forbidden")
    assert bound_ids(server, workload) == []
    bind(server, workload, t["id"])
    assert_error(server.viewer.delete(f"{bindings_url(workload)}/{t['id']}"), 403, "forbidden")
    assert bound_ids(server, workload) == [t["id"]]
