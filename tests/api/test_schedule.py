"""Schedule triggers on the real server: the runner fires them, and bad schedules are refused."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, unique
from tests.integration.helpers import wait_deployment, wait_until

# Six fields put the seconds LAST (croniter's convention): every even second.
EVERY_TWO_SECONDS = "* * * * * */2"


def get_trigger(server: Server, trigger_id: str) -> dict[str, Any]:
    r = server.viewer.get(f"/api/triggers/{trigger_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def fired_by(server: Server, workload_id: str, trigger_id: str) -> list[dict[str, Any]]:
    r = server.viewer.get(f"/api/workloads/{workload_id}/deployments")
    assert r.status_code == 200, r.text
    return [d for d in r.json()["items"] if d["reason"] == f"trigger:{trigger_id}"]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_a_schedule_fires_a_deploy_of_its_bound_workload(server: Server, project: str) -> None:
    workload = create_workload(
        server,
        project,
        config={"image": "moorage-test/httpd:1", "health": {"grace_seconds": 0.5}},
    )
    r = server.operator.post(
        "/api/triggers",
        json={
            "kind": "schedule",
            "name": unique("every-2s"),
            "config": {"cron": EVERY_TWO_SECONDS, "timezone": "UTC"},
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    trigger_id = created["id"]
    assert created["last_fired_at"] is None
    first_slot = at(created["next_run_at"])
    assert first_slot.second % 2 == 0 and first_slot.microsecond == 0
    try:
        r = server.operator.post(
            f"/api/workloads/{workload['id']}/triggers", json={"trigger_id": trigger_id}
        )
        assert r.status_code == 201, r.text

        wait_until(
            lambda: fired_by(server, workload["id"], trigger_id),
            30,
            "the schedule to queue a deployment",
        )
        shown = get_trigger(server, trigger_id)
        assert shown["last_fired_at"] is not None
        fired_at, next_slot = at(shown["last_fired_at"]), at(shown["next_run_at"])
        assert fired_at >= first_slot
        assert next_slot > fired_at
        assert next_slot > first_slot
        assert next_slot.second % 2 == 0 and next_slot.microsecond == 0
    finally:
        deleted = server.operator.delete(f"/api/triggers/{trigger_id}")
    assert deleted.status_code == 204, deleted.text

    # Deleted, it stops: more than one period passes without another deployment.
    fired = [d["id"] for d in fired_by(server, workload["id"], trigger_id)]
    time.sleep(3)
    assert [d["id"] for d in fired_by(server, workload["id"], trigger_id)] == fired

    first = fired_by(server, workload["id"], trigger_id)[-1]  # newest first
    assert first["pull"] is False
    done = wait_deployment(server.viewer, workload["id"], first["id"])
    assert done["status"] == "succeeded", done["log"]
    r = server.admin.delete(f"/api/workloads/{workload['id']}")
    assert r.status_code == 204, r.text


def schedules(server: Server) -> list[dict[str, Any]]:
    r = server.viewer.get("/api/triggers", params={"kind": "schedule"})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"cron": "0 3 * * *", "action": "restart"}, "action"),
        ({"cron": "0 3 * * *", "action": "backup"}, "target_id"),
        ({"cron": "0 3 * * *", "keep_last": 3}, "keep_last"),
        ({"cron": "0 3 * * *", "action": "snapshot", "snapshot_mode": "freeze"}, "snapshot_mode"),
        ({"cron": "0 3 * *"}, "cron"),
        ({"cron": "0 25 * * *"}, "cron"),
        ({"cron": "0 3 * * * * *"}, "cron"),
        ({"cron": "0 3 * * *", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"cron": "0 3 * * *", "timezone": "+02:00"}, "timezone"),
        # Valid cron syntax that no date matches.
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"cron": "0 0 30 2 *", "timezone": "Europe/Berlin"}, "cron"),
        ({"cron": "0 12 31 4,6,9,11 *"}, "cron"),
        ({"cron": "0 0 31 2 * 30"}, "cron"),
    ],
)
def test_a_bad_schedule_is_refused_and_creates_nothing(
    server: Server, config: dict[str, Any], field: str
) -> None:
    before = schedules(server)
    error = assert_error(
        server.operator.post(
            "/api/triggers", json={"kind": "schedule", "name": unique("bad"), "config": config}
        ),
        422,
        "invalid_config",
    )
    assert [d["field"] for d in error["details"]] == [field]
    assert schedules(server) == before


def test_the_snapshot_action_is_accepted_with_its_mode(server: Server) -> None:
    r = server.operator.post(
        "/api/triggers",
        json={
            "kind": "schedule",
            "name": unique("snap"),
            "config": {"cron": "0 3 * * *", "action": "snapshot", "snapshot_mode": "pause"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["config"]["action"] == "snapshot"
    assert r.json()["config"]["snapshot_mode"] == "pause"
    assert server.admin.delete(f"/api/triggers/{r.json()['id']}").status_code == 204


@pytest.mark.parametrize(
    "patch",
    [
        {"action": "restart"},
        {"keep_last": 3},
        {"cron": "every night"},
        {"timezone": "Mars/Olympus"},
        {"cron": "0 0 31 2 *"},
        {"cron": "0 0 30 2 *"},
    ],
)
def test_a_bad_schedule_change_is_refused_and_changes_nothing(
    server: Server, patch: dict[str, Any]
) -> None:
    r = server.operator.post(
        "/api/triggers",
        json={
            "kind": "schedule",
            "name": unique("nightly"),
            "config": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
        },
    )
    assert r.status_code == 201, r.text
    before = r.json()
    error = assert_error(
        server.operator.patch(f"/api/triggers/{before['id']}", json={"config": patch}),
        422,
        "invalid_config",
    )
    assert [d["field"] for d in error["details"]] == list(patch)
    assert get_trigger(server, before["id"]) == before


def test_a_cron_that_never_fires_is_422_on_create_and_on_patch_and_changes_nothing(
    server: Server, project: str
) -> None:
    """``0 0 31 2 *`` is valid syntax with no date: 422 naming the cron, never a 500 (nor a
    server stuck looking for a 31 February), and nothing is stored or changed."""
    before = schedules(server)
    name = unique("feb31")
    started = time.monotonic()
    error = assert_error(
        server.operator.post(
            "/api/triggers",
            json={"kind": "schedule", "name": name, "config": {"cron": "0 0 31 2 *"}},
        ),
        422,
        "invalid_config",
    )
    assert time.monotonic() - started < 5
    assert error["details"] == [
        {"field": "cron", "message": "'0 0 31 2 *' never fires: no date matches it"}
    ]
    assert schedules(server) == before
    assert name not in {t["name"] for t in schedules(server)}

    # The same as a change: the schedule keeps its cron, its next slot and its bindings.
    workload = create_workload(server, project)
    r = server.operator.post(
        f"/api/workloads/{workload['id']}/triggers",
        json={
            "trigger": {
                "kind": "schedule",
                "name": unique("nightly"),
                "config": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
            }
        },
    )
    assert r.status_code == 201, r.text
    trigger = get_trigger(server, r.json()["id"])
    assert trigger["next_run_at"] is not None
    audit = {"target_type": "trigger", "target_id": trigger["id"], "limit": 1000}
    audit_before = server.admin.get("/api/audit", params=audit).json()["items"]
    # Made by the bind: one row, the workload's, naming the trigger it created (issue 13).
    rows = {"target_type": "workload", "target_id": workload["id"], "limit": 1}
    [bound] = server.admin.get("/api/audit", params=rows).json()["items"]
    assert bound["action"] == "workload.trigger.bind"
    assert bound["details"]["trigger.create"]["trigger"] == trigger["id"]
    for patch in (
        {"config": {"cron": "0 0 31 2 *"}},
        {"name": unique("x"), "config": {"cron": "0 0 31 2 *"}},
    ):
        error = assert_error(
            server.operator.patch(f"/api/triggers/{trigger['id']}", json=patch),
            422,
            "invalid_config",
        )
        assert [d["field"] for d in error["details"]] == ["cron"]
        assert "never fires" in error["details"][0]["message"]
        assert get_trigger(server, trigger["id"]) == trigger
    assert server.admin.get("/api/audit", params=audit).json()["items"] == audit_before
    r = server.viewer.get(f"/api/workloads/{workload['id']}/triggers")
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["items"]] == [trigger["id"]]
