"""What a workload's programs print is operators' and admins' to read, wherever Moorage
keeps it (``moorage/program_output.py``), through a real server on the real engine.

Found by a security tester: a container that printed a secret env value and died had
that line in its failed deployment's ``error`` and ``log``, which a viewer read, while
``/env`` and ``/logs`` answered the same viewer 403. Each path that keeps program output
is driven here with one workload whose secret is unique to the run: a capture hook that
passes and one that fails (``before``, ``after``), the recovery point and the deploy
checkpoint that carry a failed capture's reason, a drill's own check and the sandbox's
health check, a restore whose redeploy is not healthy, a deploy's health-check command
and a container that dies. A viewer's answer holds no byte of the secret, and says where
output was left out; an operator's holds the output, without Moorage's marks.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from moorage.api.routes.drills import HIDDEN as DRILL_HIDDEN
from moorage.program_output import HIDDEN, MARK
from tests.conftest import Api, Server, create_workload
from tests.integration.helpers import deploy, wait_until

PROBE = "echo probe-$DB_PASSWORD; test -f /data/ok"
"""The workload's health check: prints the secret, passes while ``/data/ok`` exists."""


def _read(server: Server, path: str, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``path`` as a viewer reads it (no byte of ``secret`` anywhere in the answer) and as
    an operator does; neither answer holds a mark of Moorage's, raw or escaped."""
    seen = server.viewer.get(path)
    assert seen.status_code == 200, seen.text
    assert secret not in seen.text, seen.text
    theirs = server.operator.get(path)
    assert theirs.status_code == 200, theirs.text
    for answer in (seen.text, theirs.text):
        assert MARK not in answer and "\\ue000" not in answer.lower(), answer
    return dict(seen.json()), dict(theirs.json())


def _capture(api: Api, wid: str, expect: str) -> dict[str, Any]:
    r = api.post(f"/api/workloads/{wid}/snapshots", json={"mode": "none"})
    assert r.status_code == 202, r.text
    url = f"/api/workloads/{wid}/snapshots/{r.json()['id']}"
    wait_until(lambda: api.get(url).json()["status"] != "capturing", 120, "the capture")
    snap = dict(api.get(url).json())
    assert snap["status"] == expect, snap
    return snap


def _drill(api: Api, wid: str, sid: str, check: dict[str, Any] | None) -> str:
    body = {"check": check} if check is not None else None
    r = api.post(f"/api/workloads/{wid}/snapshots/{sid}/drills", json=body)
    assert r.status_code == 202, r.text
    url = f"/api/workloads/{wid}/snapshots/{sid}/drills/{r.json()['id']}"
    wait_until(lambda: api.get(url).json()["status"] != "running", 120, "the drill")
    assert api.get(url).json()["status"] == "failed"
    return url


def test_a_viewer_reads_no_program_output_an_operator_reads_it_all(
    server: Server, project: str
) -> None:
    secret = f"hunter2-{uuid.uuid4().hex}"
    op, viewer = server.operator, server.viewer
    w = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "health": {"cmd": ["sh", "-c", PROBE], "timeout_seconds": 4},
        },
    )
    wid, base = w["id"], f"/api/workloads/{w['id']}"
    env = {"DB_PASSWORD": {"value": secret, "secret": True}}
    assert op.put(f"{base}/env", json=env).status_code == 200
    volume = [{"name": "data", "scope": "stage", "source": "app/data", "target": "/data"}]
    assert op.put(f"{base}/volumes", json=volume).status_code == 200, "volumes"
    data = Path(server.data_dir) / "volumes" / project / "production" / "app" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "ok").write_text("ok\n")
    assert deploy(op, wid)["status"] == "succeeded"
    # The viewer's own doors stay shut, as before.
    assert viewer.get(f"{base}/env").status_code == 403
    assert viewer.get(f"{base}/logs").status_code == 403

    def hooks(body: dict[str, Any]) -> None:
        assert op.put(f"{base}/snapshot-hooks", json=body).status_code == 200

    # Capture hooks: a passing before's output is in the log, a failing after's in the
    # log and the warnings.
    hooks(
        {
            "before": {"command": ["sh", "-c", "echo hook-$DB_PASSWORD"]},
            "after": {"command": ["sh", "-c", "echo after-$DB_PASSWORD; exit 1"]},
        }
    )
    good = _capture(op, wid, "ready")
    seen, theirs = _read(server, f"{base}/snapshots/{good['id']}", secret)
    assert f"  hook-{secret}" in theirs["log"] and f"  after-{secret}" in theirs["log"]
    assert any(f"after-{secret}" in w for w in theirs["warnings"]), theirs["warnings"]
    assert f"  {HIDDEN}" in seen["log"] and "before hook exited 0" in seen["log"]
    assert any("after hook exited 1" in w and HIDDEN in w for w in seen["warnings"]), seen

    # A failing before fails the capture with its output; so the recovery point of the
    # stage and a deploy's checkpoint, which carry that reason.
    (data / "ok").unlink()  # from here on, the health check fails
    hooks({"before": {"command": ["sh", "-c", "echo before-$DB_PASSWORD >&2; exit 3"]}})
    failed = _capture(op, wid, "failed")
    seen, theirs = _read(server, f"{base}/snapshots/{failed['id']}", secret)
    assert f"before-{secret}" in theirs["error"] and f"before-{secret}" in theirs["log"]
    assert seen["error"].startswith("before hook exited 3") and HIDDEN in seen["error"]

    r = op.post(
        f"/api/projects/{project}/recovery-points", json={"stage": "production", "mode": "none"}
    )
    assert r.status_code == 202, r.text
    point = f"/api/projects/{project}/recovery-points/{r.json()['id']}"
    wait_until(lambda: op.get(point).json()["status"] != "capturing", 120, "the point")
    seen, theirs = _read(server, point, secret)
    assert theirs["status"] == "failed" and f"before-{secret}" in theirs["error"], theirs
    assert HIDDEN in seen["error"]

    assert op.patch(base, json={"checkpoint": "before-deploy"}).status_code == 200
    checked = deploy(op, wid)
    assert checked["status"] == "failed"
    seen, theirs = _read(server, f"{base}/deployments/{checked['id']}", secret)
    assert theirs["error"].startswith("the checkpoint snapshot")
    assert f"before-{secret}" in theirs["error"] and f"before-{secret}" in theirs["log"]
    assert HIDDEN in seen["error"] and HIDDEN in seen["log"]
    assert op.patch(base, json={"checkpoint": "none"}).status_code == 200
    hooks({})

    # Drills: the sandbox's health check (the workload's own) and an asked check. A
    # viewer reads neither log nor reason of a drill; an operator reads the output.
    plain = _capture(op, wid, "ready")  # without /data/ok
    for check, printed in [
        (None, f"probe-{secret}"),
        ({"exec": ["sh", "-c", "echo drill-$DB_PASSWORD; exit 3"], "timeout_s": 2}, "drill-"),
    ]:
        url = _drill(op, wid, plain["id"], check)
        seen, theirs = _read(server, url, secret)
        assert printed in theirs["error"] and printed in theirs["log"], theirs
        assert seen["log"] == "" and seen["error"] == DRILL_HIDDEN

    # A restore whose redeploy does not come up healthy says why, with the check's output.
    r = server.admin.post(
        f"{base}/snapshots/{plain['id']}/restore", headers={"X-Confirm-Restore": w["name"]}
    )
    assert r.status_code == 202, r.text
    restore = f"{base}/restores/{r.json()['id']}"
    wait_until(lambda: op.get(restore).json()["status"] != "running", 180, "the restore")
    seen, theirs = _read(server, restore, secret)
    assert "did not come up healthy" in theirs["error"] and f"probe-{secret}" in theirs["error"]
    assert HIDDEN in seen["error"]

    # A deploy whose health-check command fails, then a container that dies: the report.
    unhealthy = deploy(op, wid)
    assert unhealthy["status"] == "failed"
    seen, theirs = _read(server, f"{base}/deployments/{unhealthy['id']}", secret)
    assert theirs["error"].startswith("not healthy after 4 s: command exited 1")
    assert f"probe-{secret}" in theirs["error"]
    assert HIDDEN in seen["error"]
    died = ["sh", "-c", "echo db password is $DB_PASSWORD; exit 3"]
    r = op.patch(base, json={"config": {"command": died, "health": None}})
    assert r.status_code == 200, r.text
    crashed = deploy(op, wid)
    assert crashed["status"] == "failed"
    seen, theirs = _read(server, f"{base}/deployments/{crashed['id']}", secret)
    assert f"its last output:\ndb password is {secret}" in theirs["error"], theirs["error"]
    assert f"db password is {secret}" in theirs["log"]
    assert seen["error"].endswith(f"its last output:\n{HIDDEN}"), seen["error"]
    assert HIDDEN in seen["log"]

    # Every list a viewer reads, none of it.
    for path in (
        f"{base}/deployments",
        f"{base}/snapshots",
        f"{base}/restores",
        f"{base}/drills",
        f"/api/projects/{project}/recovery-points",
    ):
        listed = viewer.get(path)
        assert listed.status_code == 200 and listed.json()["items"], path
        assert secret not in listed.text, path
