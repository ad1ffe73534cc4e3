"""Deploy checkpoints and rollback through a real server and the real engine (issue 16,
SPEC section 10): a deploy whose new version corrupts its data (a marker written into the
volume) rolled back without data keeps the marker; with data, the old image and the old
bytes come back together. Refusals change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    Api,
    Server,
    admin_api,
    assert_error,
    create_workload,
    free_port,
    start_server,
    stop_server,
    unique,
    wait_faulted,
)
from tests.integration.helpers import deploy, image_id, image_of, wait_until
from tests.integration.stacks import tree

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
CORRUPT = ["sh", "-c", "echo corrupt > /www/marker; exec httpd -f -p 8080 -h /www"]


def _config(port: int, image: str, command: list[str]) -> dict[str, Any]:
    return {
        "image": image,
        "command": command,
        "init": True,
        "ports": [{"container": 8080, "host": port}],
        "health": {"http": "/", "timeout_seconds": 30},
    }


def _deployments(api: Api, wid: str) -> list[dict[str, Any]]:
    return list(api.get(f"/api/workloads/{wid}/deployments").json()["items"])


def _running_image(wid: str) -> str:
    out = (
        __import__("subprocess")
        .run(
            ["docker", "ps", "-q", "--filter", f"label=moorage.workload={wid}"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.split()
    )
    assert len(out) == 1, out
    return image_of(out[0])


def _wait_rollback(api: Api, wid: str, did: str, count: int) -> dict[str, Any]:
    """The ``count``-th deployment with reason rollback:<did>, once it ended."""

    def done() -> bool:
        rows = [d for d in _deployments(api, wid) if d["reason"] == f"rollback:{did}"]
        return len(rows) >= count and rows[0]["status"] in ("succeeded", "failed")

    wait_until(done, 240, "the rollback's deploy")
    return next(d for d in _deployments(api, wid) if d["reason"] == f"rollback:{did}")


def test_a_corrupting_deploy_rolled_back_with_and_without_data(
    server: Server, project: str
) -> None:
    port = free_port()
    name = unique("ck")
    wl = create_workload(
        server, project, name=name, config=_config(port, "moorage-test/httpd:1", HTTPD)
    )
    wid = wl["id"]
    op, admin = server.operator, server.admin
    r = op.put(
        f"/api/workloads/{wid}/volumes",
        json=[{"name": "www", "scope": "stage", "source": f"{name}/www", "target": "/www"}],
    )
    assert r.status_code == 200, r.text
    www = server.data_dir / "volumes" / project / "production" / name / "www"
    www.mkdir(parents=True)
    (www / "index.html").write_text("old data\n")
    (www / "blob.bin").write_bytes(b"\x00\x01" * 40_000)
    r = op.patch(f"/api/workloads/{wid}", json={"checkpoint": "before-deploy"})
    assert r.status_code == 200 and r.json()["checkpoint"] == "before-deploy", r.text

    d1 = deploy(op, wid)
    assert d1["status"] == "succeeded", d1["log"]
    assert d1["checkpoint_snapshot_id"], d1
    old = tree(www)
    v1 = _running_image(wid)
    assert v1 == image_id("moorage-test/httpd:1")

    # v2 corrupts its data as it starts.
    r = op.patch(
        f"/api/workloads/{wid}",
        json={"config": {"image": "moorage-test/httpd:2", "command": CORRUPT}},
    )
    assert r.status_code == 200, r.text
    d2 = deploy(op, wid)
    assert d2["status"] == "succeeded", d2["log"]
    checkpoint = admin.get(f"/api/workloads/{wid}/snapshots/{d2['checkpoint_snapshot_id']}").json()
    assert checkpoint["origin"] == "checkpoint" and checkpoint["status"] == "ready"
    assert f"checkpoint: snapshot {checkpoint['id']} is ready" in d2["log"]
    assert (www / "marker").read_text() == "corrupt\n"
    assert _running_image(wid) == image_id("moorage-test/httpd:2")

    # Code only: the old image runs again, and the marker stays.
    r = op.post(f"/api/workloads/{wid}/deployments/{d1['id']}/rollback", json={})
    assert r.status_code == 202, r.text
    assert r.json()["restore_id"] is None
    plain = _wait_rollback(op, wid, d1["id"], 1)
    assert plain["status"] == "succeeded", plain["log"]
    assert _running_image(wid) == v1
    assert (www / "marker").exists()

    # Code and data: the checkpoint d2 took (the data as d1 left it) comes back first.
    r = admin.post(
        f"/api/workloads/{wid}/deployments/{d1['id']}/rollback",
        json={"data": True},
        headers={"X-Confirm-Restore": name},
    )
    assert r.status_code == 202, r.text
    assert r.json()["checkpoint_snapshot_id"] == checkpoint["id"] and r.json()["restore_id"]
    both = _wait_rollback(op, wid, d1["id"], 2)
    assert both["status"] == "succeeded", both["log"]
    restore = admin.get(f"/api/workloads/{wid}/restores/{r.json()['restore_id']}").json()
    assert restore["status"] == "succeeded", restore
    assert _running_image(wid) == v1
    assert tree(www) == old  # byte for byte, the marker gone
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "old data\n"
    admin.delete(f"/api/workloads/{wid}", params={"purge_snapshots": "true"})


def test_rollback_refusals_change_nothing(server: Server, project: str) -> None:
    port = free_port()
    name = unique("rb")
    wl = create_workload(
        server, project, name=name, config=_config(port, "moorage-test/httpd:1", HTTPD)
    )
    wid = wl["id"]
    op, admin = server.operator, server.admin
    assert_error(
        op.patch(f"/api/workloads/{wid}", json={"checkpoint": "sometimes"}),
        422,
        "invalid_checkpoint",
    )
    good = deploy(op, wid)
    assert good["status"] == "succeeded"
    assert good["checkpoint_snapshot_id"] is None  # checkpoint "none", and no volumes
    op.patch(f"/api/workloads/{wid}", json={"config": {"image": "moorage-test/nope:9"}})
    bad = deploy(op, wid)
    assert bad["status"] == "failed"
    before = (op.get(f"/api/workloads/{wid}").json(), len(_deployments(op, wid)))
    url = f"/api/workloads/{wid}/deployments/{good['id']}/rollback"
    confirm = {"X-Confirm-Restore": name}
    cases = [
        (op.post(url, json={"data": True}, headers=confirm), 403, "forbidden"),
        (admin.post(url, json={"data": True}), 428, "confirmation_required"),
        (admin.post(url, json={"data": True}, headers={"X-Confirm-Restore": "other"}), 428, None),
        (admin.post(url, json={"data": True}, headers=confirm), 409, "no_checkpoint"),
        (op.post(url.replace(good["id"], bad["id"]), json={}), 409, "not_rollbackable"),
        (op.post(url.replace(good["id"], "dp_0000000000000000"), json={}), 404, None),
        (op.post(url, json={"data": "yes please"}), 422, "invalid_request"),
        (server.viewer.post(url, json={}), 403, None),
    ]
    for response, status, code in cases:
        assert_error(response, status, code)
        assert (op.get(f"/api/workloads/{wid}").json(), len(_deployments(op, wid))) == before
    admin.delete(f"/api/workloads/{wid}")


@pytest.mark.parametrize(
    ("point", "restored"),
    # The restore's every point, both sides of its commit, is in test_restore.py; here the
    # rollback's own part: the point after the commit, where the data came back but the
    # rollback's deploy was never queued.
    [("restore.after_redeploy", True)],
)
def test_a_rollback_with_data_killed_midway_is_all_old_or_all_new(
    tmp_path: Path, point: str, restored: bool
) -> None:
    """SIGKILL inside the rollback's restore: after a restart the volume is the checkpoint
    (the restore committed) or the corrupted data (it had not), never a mix (SPEC section
    6); the workload stays stopped, and the next deploy runs the rolled-back image on
    that data."""
    data = tmp_path / "var"
    armed = {"MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": point}
    proc, url, env = start_server(data, armed)
    port, name = free_port(), "ck"
    try:
        api = admin_api(url, env)
        slug = unique("crash")  # its stage network must be this server's alone
        assert api.post("/api/projects", json={"slug": slug}).status_code == 201
        fake = Server(url, data, data, env, api, api, api, Api(url))
        wid = create_workload(
            fake, slug, name=name, config=_config(port, "moorage-test/httpd:1", HTTPD)
        )["id"]
        volume = [{"name": "www", "scope": "stage", "source": f"{name}/www", "target": "/www"}]
        assert api.put(f"/api/workloads/{wid}/volumes", json=volume).status_code == 200
        www = data / "volumes" / slug / "production" / name / "www"
        www.mkdir(parents=True)
        (www / "index.html").write_text("old data\n")
        assert api.patch(f"/api/workloads/{wid}", json={"checkpoint": "before-deploy"}).is_success
        d1 = deploy(api, wid)
        assert d1["status"] == "succeeded", d1["log"]
        old = tree(www)
        patch = {"config": {"image": "moorage-test/httpd:2", "command": CORRUPT}}
        assert api.patch(f"/api/workloads/{wid}", json=patch).status_code == 200
        assert deploy(api, wid)["status"] == "succeeded"
        corrupt = tree(www)
        assert corrupt != old
        r = api.post(
            f"/api/workloads/{wid}/deployments/{d1['id']}/rollback",
            json={"data": True},
            headers={"X-Confirm-Restore": name},
        )
        assert r.status_code == 202, r.text
        wait_faulted(proc, data)
    finally:
        stop_server(proc)
    proc, url, env = start_server(data)
    try:
        api = admin_api(url, env)
        assert tree(www) == (old if restored else corrupt)
        assert api.get(f"/api/workloads/{wid}").json()["status"] == "stopped"
        again = deploy(api, wid)
        assert again["status"] == "succeeded", again["log"]
        assert _running_image(wid) == image_id("moorage-test/httpd:1")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "old data\n"
        assert (www / "marker").exists() != restored
    finally:
        stop_server(proc)
