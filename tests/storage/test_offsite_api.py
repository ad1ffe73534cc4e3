"""Off-site copies through real ``moorage serve`` processes, against real targets (SPEC
section 11): a workload's policy copies every ready snapshot, verified, shown on the
snapshot; ``POST .../copies`` copies now; the roles; a copy cut off by killing the server
mid-upload leaves nothing on the target that counts as a copy, and the next start copies
it again; the target's credentials appear in no answer, log, audit row or database row.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from moorage.offsite import layout
from moorage.storage.sftp import SftpStorage
from tests.conftest import (
    Api,
    Server,
    admin_api,
    assert_error,
    create_workload,
    start_server,
    stop_server,
    unique,
)
from tests.storage.conftest import SftpServer, s3_config, sftp_config

PASSPHRASE = "a long test passphrase"


def make_target(api: Api, kind: str, config: dict[str, Any]) -> str:
    body = {"name": unique("st"), "kind": kind, "config": config, "passphrase": PASSPHRASE}
    r = api.post("/api/storage-targets", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def workload_with_data(
    api: Api, url: str, data_dir: Path, project: str, payload: bytes
) -> dict[str, Any]:
    """A never-deployed workload whose stage volume holds ``payload`` in ``blob``."""
    server = Server(url, data_dir, data_dir, {}, api, api, api, Api(url))
    w = create_workload(server, project)
    r = api.put(
        f"/api/workloads/{w['id']}/volumes",
        json=[{"name": "data", "scope": "stage", "source": f"{w['name']}/d", "target": "/d"}],
    )
    assert r.status_code == 200, r.text
    host = data_dir / "volumes" / project / "production" / w["name"] / "d"
    host.mkdir(parents=True, exist_ok=True)
    (host / "blob").write_bytes(payload)
    return w


def capture(api: Api, wid: str) -> dict[str, Any]:
    r = api.post(f"/api/workloads/{wid}/snapshots", json={"mode": "none"})
    assert r.status_code == 202, r.text
    return wait_snapshot(api, wid, r.json()["id"], lambda s: s["status"] != "capturing")


def wait_snapshot(api: Api, wid: str, sid: str, done: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap = api.get(f"/api/workloads/{wid}/snapshots/{sid}").json()
        if done(snap):
            return dict(snap)
        assert time.monotonic() < deadline, snap
        time.sleep(0.2)


def copy_state(snap: dict[str, Any], target_id: str) -> str | None:
    states = [c["status"] for c in snap["copies"] if c["target_id"] == target_id]
    return states[0] if states else None


def test_a_policy_copies_every_ready_snapshot_verified_and_copy_now_adds_a_target(
    server: Server, project: str, sftp_server: SftpServer, s3_endpoint: str
) -> None:
    sftp_target = make_target(server.admin, "sftp", sftp_config(sftp_server))
    s3_target = make_target(server.admin, "s3", s3_config(s3_endpoint))
    w = workload_with_data(server.admin, server.url, server.data_dir, project, os.urandom(1 << 20))
    wid = w["id"]
    before = capture(server.operator, wid)  # a snapshot from before the policy is copied too
    assert server.operator.get(f"/api/workloads/{wid}/offsite").json()["target_id"] is None

    assert_error(
        server.viewer.put(f"/api/workloads/{wid}/offsite", json={"target_id": sftp_target}), 403
    )
    assert_error(
        server.operator.put(f"/api/workloads/{wid}/offsite", json={"target_id": "st_nope"}),
        422,
        "unknown_target",
    )
    assert_error(
        server.operator.put(
            f"/api/workloads/{wid}/offsite", json={"target_id": sftp_target, "keep_last": 0}
        ),
        422,
        "invalid_retention",
    )
    r = server.operator.put(
        f"/api/workloads/{wid}/offsite", json={"target_id": sftp_target, "keep_last": 5}
    )
    assert r.status_code == 200, r.text
    assert r.json()["target_id"] == sftp_target and r.json()["keep_last"] == 5
    # A target a policy copies to is not forgotten under it.
    refused = server.admin.delete(f"/api/storage-targets/{sftp_target}")
    assert_error(refused, 409, "target_in_use")
    assert w["name"] in refused.json()["error"]["message"]
    assert server.operator.get(f"/api/workloads/{wid}/offsite").json()["target_id"] == sftp_target
    after = capture(server.operator, wid)
    for sid in (before["id"], after["id"]):
        snap = wait_snapshot(
            server.viewer, wid, sid, lambda s: copy_state(s, sftp_target) in ("verified", "failed")
        )
        [copy] = snap["copies"]
        assert copy["status"] == "verified", copy
        assert copy["verified_at"] and copy["error"] is None and copy["size"] > snap["size"]
    listed = server.viewer.get(f"/api/workloads/{wid}/snapshots").json()["items"]
    assert all(copy_state(s, sftp_target) == "verified" for s in listed)
    # Tightening retention deletes copies the target holds: an admin's call, as deleting
    # snapshots is (the attacker pass pruned an admin's copies with keep_last 1).
    for tighter in ({"keep_last": 1}, {"keep_last": 5, "keep_daily": 1}):
        assert_error(
            server.operator.put(
                f"/api/workloads/{wid}/offsite", json={"target_id": sftp_target, **tighter}
            ),
            403,
            "forbidden",
        )
    assert server.viewer.get(f"/api/workloads/{wid}/offsite").json()["keep_last"] == 5
    r = server.operator.put(  # looser stays an operator's
        f"/api/workloads/{wid}/offsite", json={"target_id": sftp_target, "keep_last": 9}
    )
    assert r.status_code == 200, r.text
    r = server.admin.put(
        f"/api/workloads/{wid}/offsite", json={"target_id": sftp_target, "keep_last": 5}
    )
    assert r.status_code == 200, r.text

    # Copy now, to another target: 202, then verified, shown beside the first copy.
    r = server.viewer.post(
        f"/api/workloads/{wid}/snapshots/{after['id']}/copies", json={"target_id": s3_target}
    )
    assert_error(r, 403)
    r = server.operator.post(
        f"/api/workloads/{wid}/snapshots/{after['id']}/copies", json={"target_id": s3_target}
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("pending", "copying", "verified")
    snap = wait_snapshot(
        server.viewer,
        wid,
        after["id"],
        lambda s: copy_state(s, s3_target) in ("verified", "failed"),
    )
    assert sorted(c["target_id"] for c in snap["copies"]) == sorted([sftp_target, s3_target])
    assert all(c["status"] == "verified" for c in snap["copies"]), snap["copies"]

    assert server.viewer.get(f"/api/workloads/{wid}/offsite").json()["stale"] is False
    metrics = httpx.get(f"{server.url}/metrics").text
    assert f'moorage_offsite_stale{{target="{sftp_target}",workload="{wid}"}} 0.0' in metrics
    audit = server.admin.get(
        "/api/audit", params={"limit": 1000, "target_type": "workload", "target_id": wid}
    ).json()["items"]
    actions = [a["action"] for a in audit]
    assert actions.count("workload.offsite") == 3 and actions.count("snapshot.copy") == 1

    r = server.operator.delete(f"/api/workloads/{wid}/offsite")
    assert r.status_code == 204
    assert server.viewer.get(f"/api/workloads/{wid}/offsite").json()["target_id"] is None


def test_a_copy_cut_off_by_a_kill_leaves_nothing_that_counts_and_is_copied_again(
    tmp_path: Path, sftp_server: SftpServer
) -> None:
    data_dir = tmp_path / "var"
    faulty = {"MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": "offsite.mid_upload"}
    proc, url, env = start_server(data_dir, faulty)
    config = sftp_config(sftp_server)
    try:
        api = admin_api(url, env)
        project = unique("p")
        assert api.post("/api/projects", json={"slug": project}).status_code == 201
        target = make_target(api, "sftp", config)
        # Random bytes do not compress: the archive is about 24 MiB, the kill comes at 4.
        w = workload_with_data(api, url, data_dir, project, os.urandom(24 << 20))
        snap = capture(api, w["id"])
        assert snap["status"] == "ready"
        r = api.put(f"/api/workloads/{w['id']}/offsite", json={"target_id": target})
        assert r.status_code == 200, r.text
        proc.wait(timeout=120)  # the fault point kills it mid-upload
    finally:
        stop_server(proc)
    kind = SftpStorage()
    store = kind.open(config)
    try:
        objects = store.list()
        assert layout.held(objects) == []  # nothing counts as a copy
        assert not [o for o in objects if o.key.endswith(layout.META)]
    finally:
        store.close()

    proc, url, env = start_server(data_dir, port=None)
    try:
        api = admin_api(url, env)
        done = wait_snapshot(
            api, w["id"], snap["id"], lambda s: copy_state(s, target) in ("verified", "failed")
        )
        [copy] = done["copies"]
        assert copy["status"] == "verified", copy
        assert copy["attempts"] == 2
    finally:
        stop_server(proc)
    store = kind.open(config)
    try:
        [held] = layout.held(store.list())
        assert held.snapshot_id == snap["id"]
        # Only the copy and its metadata (and the target's key): no scratch file listed.
        assert len(store.list("snapshots/")) == 2
    finally:
        store.close()
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert sftp_server.private_key.splitlines()[1] not in log


def test_credentials_never_show_in_answers_logs_audit_or_the_database(
    server: Server, project: str, sftp_server: SftpServer, s3_endpoint: str
) -> None:
    config = {**sftp_config(sftp_server), "password": sftp_server.password}
    del config["private_key"]
    s3_secret = "s3-secret-" + unique("k")
    s3 = {**s3_config(s3_endpoint), "secret_access_key": s3_secret}
    sftp_target = make_target(server.admin, "sftp", config)
    s3_target = make_target(server.admin, "s3", s3)
    w = workload_with_data(server.admin, server.url, server.data_dir, project, b"secret-free")
    snap = capture(server.operator, w["id"])
    for target in (sftp_target, s3_target):
        r = server.operator.post(
            f"/api/workloads/{w['id']}/snapshots/{snap['id']}/copies", json={"target_id": target}
        )
        assert r.status_code == 202, r.text
    done = wait_snapshot(
        server.viewer,
        w["id"],
        snap["id"],
        lambda s: (
            len(s["copies"]) == 2
            and all(c["status"] in ("verified", "failed") for c in s["copies"])
        ),
    )
    assert [c["status"] for c in done["copies"]] == ["verified", "verified"], done["copies"]
    answers = json.dumps(
        [
            server.admin.get("/api/storage-targets").json(),
            server.admin.get(f"/api/workloads/{w['id']}/snapshots").json(),
            server.admin.get(f"/api/workloads/{w['id']}/offsite").json(),
            server.admin.get("/api/audit", params={"limit": 1000}).json(),
        ]
    )
    logs = "".join(p.read_text() for p in server.data_dir.parent.glob("server-*.log"))
    with sqlite3.connect(server.data_dir / "moorage.db") as db:
        dumped = "\n".join(db.iterdump())
    for secret in (sftp_server.password, s3_secret):
        assert secret not in answers
        assert secret not in logs
        assert secret not in dumped
