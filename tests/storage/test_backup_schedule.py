"""Scheduled instance backups (SPEC section 11; ``offsite/backup_runner.py``) through the
real server: a ``schedule`` trigger with action ``backup`` puts a verified bundle on its
target at each firing and keeps the newest ``keep_last`` there; every run leaves an
audit row and ``/metrics`` shows the last good one. Only an admin makes, changes or
removes such a schedule; it binds to no workload; its target cannot be deleted under
it; a run whose target fails is recorded as failed, not lost."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from moorage.offsite import layout
from tests.conftest import Server, create_workload, unique
from tests.integration.helpers import wait_until
from tests.storage.test_offsite_api import make_target

EVERY_SECOND = "* * * * * *"


def rows(server: Server, target: str) -> list[dict[str, Any]]:
    r = server.admin.get(
        "/api/audit", params={"target_type": "storage_target", "target_id": target, "limit": 200}
    )
    assert r.status_code == 200, r.text
    return [x for x in r.json()["items"] if x["action"].startswith("instance.backup")]


def wait_rows(server: Server, target: str, action: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = [x for x in rows(server, target) if x["action"] == action]
        if len(found) >= count:
            return found
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} {action} rows: {rows(server, target)}")


def bundles(where: Path) -> list[str]:
    folder = where / "instance"
    names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    return [n for n in names if n.endswith(layout.BUNDLE)]


def schedule(target: str, **more: Any) -> dict[str, Any]:
    return {
        "kind": "schedule",
        "name": unique("backup"),
        "config": {"cron": EVERY_SECOND, "action": "backup", "target_id": target, **more},
    }


def test_a_backup_schedule_keeps_the_newest_bundles(
    server: Server, project: str, tmp_path: Path
) -> None:
    where = tmp_path / "target"
    target = make_target(server.admin, "local", {"path": str(where)})

    # An operator may not make one; nothing is made.
    before = len(server.admin.get("/api/triggers").json()["items"])
    r = server.operator.post("/api/triggers", json=schedule(target, keep_last=2))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert len(server.admin.get("/api/triggers").json()["items"]) == before
    # Nor turn a deploy schedule into one.
    mine = server.operator.post(
        "/api/triggers",
        json={"kind": "schedule", "name": unique("nightly"), "config": {"cron": "0 3 * * *"}},
    )
    assert mine.status_code == 201, mine.text
    r = server.operator.patch(
        f"/api/triggers/{mine.json()['id']}",
        json={"config": {"action": "backup", "target_id": target}},
    )
    assert r.status_code == 403, r.text
    assert server.admin.get(f"/api/triggers/{mine.json()['id']}").json()["config"]["action"] == (
        "deploy"
    )

    # Bad configs: no target, an unknown one, retention on another action.
    for config, code in (
        ({"cron": EVERY_SECOND, "action": "backup"}, "invalid_config"),
        ({"cron": EVERY_SECOND, "action": "backup", "target_id": "st_none"}, "unknown_target"),
        ({"cron": EVERY_SECOND, "action": "deploy", "keep_last": 3}, "invalid_config"),
        (
            {"cron": EVERY_SECOND, "action": "backup", "target_id": target, "keep_last": 0},
            "invalid_config",
        ),
    ):
        body = {"kind": "schedule", "name": unique("bad"), "config": config}
        r = server.admin.post("/api/triggers", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (config, r.text)

    made = server.admin.post("/api/triggers", json=schedule(target, keep_last=2))
    assert made.status_code == 201, made.text
    tid = made.json()["id"]
    try:
        done = wait_rows(server, target, "instance.backup", 3)
        assert all(x["actor"].startswith("schedule:") for x in done)
        # An operator can neither stop nor change it, and it binds to no workload.
        assert server.operator.delete(f"/api/triggers/{tid}").status_code == 403
        r = server.operator.patch(f"/api/triggers/{tid}", json={"config": {"keep_last": 1000}})
        assert r.status_code == 403, r.text
        w = create_workload(server, project)
        r = server.admin.post(f"/api/workloads/{w['id']}/triggers", json={"trigger_id": tid})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_binding", r.text
        # The target is in use.
        r = server.admin.delete(f"/api/storage-targets/{target}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "target_in_use", r.text
    finally:
        assert server.admin.delete(f"/api/triggers/{tid}").status_code == 204
    # A run that had started finishes, and prunes: keep_last 2, the newest among them.

    def settled() -> bool:
        newest = max(x["details"]["key"] for x in rows(server, target) if "key" in x["details"])
        held = bundles(where)
        return len(held) == 2 and newest.split("/")[-1] in held

    wait_until(settled, 30, "the two newest bundles left")
    metrics = server.anonymous.get("/metrics").text
    assert f'moorage_instance_backup_last_success_timestamp_seconds{{target="{target}"}}' in (
        metrics
    )


def test_a_failing_backup_is_recorded(server: Server, tmp_path: Path) -> None:
    where = tmp_path / "target"
    target = make_target(server.admin, "local", {"path": str(where)})
    # The mounted disk went away: its directory is now a file.
    shutil.rmtree(where)
    where.write_text("not a directory")
    made = server.admin.post("/api/triggers", json=schedule(target))
    assert made.status_code == 201, made.text
    try:
        failed = wait_rows(server, target, "instance.backup_failed", 1)
    finally:
        server.admin.delete(f"/api/triggers/{made.json()['id']}")
    error = failed[0]["details"]["error"]
    assert error["code"] and str(where) in error["message"], error
    assert not [x for x in rows(server, target) if x["action"] == "instance.backup"]
    assert (
        'moorage_instance_backups_total{result="failed"}' in server.anonymous.get("/metrics").text
    )
