"""Snapshots on the real engine: capture modes, download, import, retention, crash mid-capture."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard

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
from tests.integration.helpers import containers, deploy, wait_until

TERMINAL = {"ready", "failed"}


def with_volume(server: Server, project: str, **config: Any) -> dict[str, Any]:
    w = create_workload(server, project, config={"image": "moorage-test/httpd:1", **config})
    r = server.operator.put(
        f"/api/workloads/{w['id']}/volumes",
        json=[
            {"name": "data", "scope": "stage", "source": f"{w['name']}/data", "target": "/data"},
            {"name": "cache", "scope": "stage", "source": f"{w['name']}/cache", "target": "/cache"},
        ],
    )
    assert r.status_code == 200, r.text
    return w


def capture(api: Api, wid: str, timeout: float = 120, **body: Any) -> dict[str, Any]:
    r = api.post(f"/api/workloads/{wid}/snapshots", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "capturing"
    sid = r.json()["id"]
    deadline = time.monotonic() + timeout
    while True:
        snap = api.get(f"/api/workloads/{wid}/snapshots/{sid}").json()
        if snap["status"] in TERMINAL:
            return dict(snap)
        assert time.monotonic() < deadline, snap
        time.sleep(0.2)


def write_data(name: str) -> None:
    subprocess.run(
        [
            "docker",
            "exec",
            name,
            "sh",
            "-c",
            "mkdir -p /data/sub /data/empty && echo hello > /data/a.txt && "
            "echo nested > /data/sub/b && : > /data/sub/zero && echo c > /cache/c",
        ],
        check=True,
        capture_output=True,
    )


def state_of(wid: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=moorage.workload={wid}",
            "--format",
            "{{.ID}} {{.State}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(tuple(line.split()) for line in out.splitlines())  # type: ignore[misc]


@pytest.mark.parametrize("mode", ["stop", "pause", "none"])
def test_capture_modes_leave_the_workload_as_it_was(
    server: Server, project: str, mode: str
) -> None:
    w = with_volume(server, project)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    (name,) = containers(w["id"])
    write_data(name)
    before = state_of(w["id"])
    snap = capture(server.operator, w["id"], mode=mode)
    assert snap["status"] == "ready", snap
    assert state_of(w["id"]) == before  # same container, same state
    vols = {v["name"]: v for v in snap["manifest"]["volumes"]}
    assert vols["data"]["files"] == 3 and vols["data"]["bytes"] == len("hello\nnested\n")
    assert vols["cache"]["files"] == 1
    assert snap["size"] > 0 and len(snap["sha256"]) == 64
    assert snap["progress_bytes"] == snap["total_bytes"]


def test_a_subset_of_volumes_and_bad_requests(server: Server, project: str) -> None:
    w = with_volume(server, project)
    snap = capture(server.operator, w["id"], volumes=["cache"], mode="none")
    assert snap["status"] == "ready" and snap["volumes"] == ["cache"]
    assert [v["name"] for v in snap["manifest"]["volumes"]] == ["cache"]
    listed = server.viewer.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
    assert [s["id"] for s in listed] == [snap["id"]]
    for body, code in (
        ({"volumes": ["nope"]}, "unknown_volume"),
        ({"mode": "freeze"}, "invalid_mode"),
        ({"volumes": []}, "unknown_volume"),
    ):
        assert_error(
            server.operator.post(f"/api/workloads/{w['id']}/snapshots", json=body), 422, code
        )
    assert [
        s["id"] for s in server.viewer.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
    ] == [snap["id"]]
    bare = create_workload(server, project)
    assert_error(
        server.operator.post(f"/api/workloads/{bare['id']}/snapshots", json={}), 422, "no_volumes"
    )


def test_download_import_and_delete(server: Server, project: str) -> None:
    w = with_volume(server, project)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    write_data(containers(w["id"])[0])
    snap = capture(server.operator, w["id"])
    r = server.operator.get(f"/api/workloads/{w['id']}/snapshots/{snap['id']}/archive")
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == snap["size"] == len(r.content)
    assert r.headers["x-moorage-sha256"] == snap["sha256"] == hashlib.sha256(r.content).hexdigest()

    other = with_volume(server, project)
    url = f"/api/workloads/{other['id']}/snapshots/import"
    assert_error(server.operator.post(url, content=r.content), 403, "forbidden")
    imported = server.admin.post(
        url, content=r.content, headers={"Content-Type": "application/zstd"}
    )
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert body["status"] == "ready" and body["origin"] == "import"
    assert body["sha256"] == snap["sha256"]
    assert body["manifest"]["volumes"] == snap["manifest"]["volumes"]
    # Multipart works too.
    multi = server.admin.post(url, files={"file": ("a.tar.zst", r.content)})
    assert multi.status_code == 201, multi.text

    assert_error(
        server.operator.delete(f"/api/workloads/{w['id']}/snapshots/{snap['id']}"), 403, "forbidden"
    )
    path = server.data_dir / "snapshots" / w["id"] / f"{snap['id']}.tar.zst"
    assert path.exists()
    assert (
        server.admin.delete(f"/api/workloads/{w['id']}/snapshots/{snap['id']}").status_code == 204
    )
    assert not path.exists()
    assert server.viewer.get(f"/api/workloads/{w['id']}/snapshots/{snap['id']}").status_code == 404


def test_a_snapshot_being_captured_cannot_be_deleted(server: Server, project: str) -> None:
    # A container that ignores SIGTERM keeps a "stop" capture busy for its stop timeout.
    stubborn = {
        "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
        "stop_timeout": 6,
        "health": {"grace_seconds": 0.5},
    }
    w = with_volume(server, project, **stubborn)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    r = server.operator.post(f"/api/workloads/{w['id']}/snapshots", json={"mode": "stop"})
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    snap_url = f"/api/workloads/{w['id']}/snapshots/{sid}"
    assert server.viewer.get(snap_url).json()["status"] == "capturing"
    # Refused at once, not after waiting for the capture's hold on the workload.
    started = time.monotonic()
    assert_error(server.admin.delete(snap_url), 409, "snapshot_busy")
    assert time.monotonic() - started < 3
    wait_until(lambda: server.viewer.get(snap_url).json()["status"] == "ready", 60, "capture")
    assert server.admin.delete(snap_url).status_code == 204


def traversal_archive() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        manifest = (
            b'{"format": 1, "workload": {"id": "x", "name": "x", "kind": "image"}, '
            b'"created_at": "2026-01-01T00:00:00Z", "volumes": [{"index": 0, '
            b'"name": "data", "scope": "stage", "source": "d", "files": 1, "bytes": 2}]}'
        )
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        evil = tarfile.TarInfo("volumes/0/../../../../tmp/moorage-escape")
        evil.size = 2
        tar.addfile(evil, io.BytesIO(b"hi"))
    return zstandard.ZstdCompressor().compress(raw.getvalue())


@pytest.mark.parametrize("payload", [b"", b"not an archive at all", "traversal"])
def test_a_bad_import_is_422_and_leaves_nothing(server: Server, project: str, payload: Any) -> None:
    w = with_volume(server, project)
    body = traversal_archive() if payload == "traversal" else payload
    r = server.admin.post(f"/api/workloads/{w['id']}/snapshots/import", content=body)
    error = assert_error(r, 422)
    assert error["code"] in ("invalid_archive", "invalid_input"), error
    assert server.viewer.get(f"/api/workloads/{w['id']}/snapshots").json()["items"] == []
    folder = server.data_dir / "snapshots" / w["id"]
    assert not folder.exists() or list(folder.iterdir()) == []
    assert not Path("/tmp/moorage-escape").exists()


def test_retention_keeps_the_newest_captures(server: Server, project: str) -> None:
    w = with_volume(server, project)
    r = server.operator.patch(f"/api/workloads/{w['id']}", json={"keep_last": 2})
    assert r.status_code == 200 and r.json()["keep_last"] == 2
    ids = [capture(server.operator, w["id"], mode="none")["id"] for _ in range(3)]
    left = [
        s["id"] for s in server.viewer.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
    ]
    assert left == [ids[2], ids[1]]
    assert not (server.data_dir / "snapshots" / w["id"] / f"{ids[0]}.tar.zst").exists()


def test_a_workload_with_snapshots_is_deleted_only_with_purge(server: Server, project: str) -> None:
    w = with_volume(server, project)
    snap = capture(server.operator, w["id"], mode="none")
    assert_error(server.admin.delete(f"/api/workloads/{w['id']}"), 409, "has_snapshots")
    assert server.viewer.get(f"/api/workloads/{w['id']}").status_code == 200
    r = server.admin.delete(f"/api/workloads/{w['id']}", params={"purge_snapshots": "true"})
    assert r.status_code == 204
    assert not (server.data_dir / "snapshots" / w["id"] / f"{snap['id']}.tar.zst").exists()


def test_a_scheduled_snapshot_action_captures(server: Server, project: str) -> None:
    w = with_volume(server, project)
    r = server.operator.post(
        "/api/triggers",
        json={
            "kind": "schedule",
            "name": unique("snap"),
            "config": {"cron": "* * * * * */2", "action": "snapshot", "snapshot_mode": "none"},
        },
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    assert (
        server.operator.post(
            f"/api/workloads/{w['id']}/triggers", json={"trigger_id": tid}
        ).status_code
        == 201
    )

    def scheduled() -> list[dict[str, Any]]:
        items = server.viewer.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
        return [s for s in items if s["origin"] == "scheduled" and s["status"] == "ready"]

    try:
        wait_until(lambda: bool(scheduled()), 30, "a scheduled snapshot")
    finally:
        server.operator.delete(f"/api/triggers/{tid}")
    assert scheduled()[0]["mode"] == "none"


def test_metrics_count_captured_bytes(server: Server, project: str) -> None:
    w = with_volume(server, project)
    capture(server.operator, w["id"], mode="none")
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert "moorage_snapshot_capture_bytes_total" in text
    assert 'moorage_snapshot_captures_total{result="ready"}' in text


def test_killed_mid_capture_restarts_clean_and_running(tmp_path: Path) -> None:
    data = tmp_path / "var"
    proc, url, env = start_server(
        data, {"MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": "snapshot.mid_capture"}
    )
    port = free_port()
    try:
        api = admin_api(url, env)
        slug = unique("snap")  # its stage network must be this server's alone
        assert api.post("/api/projects", json={"slug": slug}).status_code == 201
        wid = api.post(
            "/api/workloads",
            json={
                "name": "db",
                "kind": "image",
                "project": slug,
                "stage": "production",
                "config": {
                    "image": "moorage-test/httpd:1",
                    "ports": [{"container": 8080, "host": port}],
                },
            },
        ).json()["id"]
        api.put(
            f"/api/workloads/{wid}/volumes",
            json=[{"name": "data", "scope": "stage", "source": "db", "target": "/data"}],
        )
        d = api.post(f"/api/workloads/{wid}/deploy").json()
        from tests.integration.helpers import wait_deployment

        assert wait_deployment(api, wid, d["id"])["status"] == "succeeded"
        (name,) = containers(wid)
        subprocess.run(
            ["docker", "exec", name, "dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=8"],
            check=True,
            capture_output=True,
        )
        r = api.post(f"/api/workloads/{wid}/snapshots", json={"mode": "pause"})
        assert r.status_code == 202
        sid = r.json()["id"]
        wait_faulted(proc, data)
        assert state_of(wid)[0][1] == "paused"  # frozen when the process died
    finally:
        stop_server(proc)
    proc, url, env = start_server(data)
    try:
        api = admin_api(url, env)
        snap = api.get(f"/api/workloads/{wid}/snapshots/{sid}").json()
        assert snap["status"] == "failed" and "stopped during the capture" in snap["error"]
        folder = data / "snapshots" / wid
        assert not folder.exists() or list(folder.iterdir()) == []
        wait_until(lambda: state_of(wid)[0][1] == "running", 30, "the container to run again")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        stop_server(proc)


def test_a_full_disk_during_capture_is_named_and_leaves_nothing(
    server: Server, project: str
) -> None:
    """The workload's snapshot directory is a 2 MiB tmpfs; its volume holds 6 MiB that
    do not compress. The capture fails saying which disk is full, leaves no partial
    file, and works again once there is room."""
    w = with_volume(server, project)
    volumes = server.operator.get(f"/api/workloads/{w['id']}/volumes").json()["items"]
    data = Path(next(v["host_path"] for v in volumes if v["name"] == "data"))
    data.mkdir(parents=True, exist_ok=True)
    (data / "noise.bin").write_bytes(os.urandom(6 * 2**20))
    snapshots = server.data_dir / "snapshots" / w["id"]
    snapshots.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(snapshots)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        snap = capture(server.operator, w["id"], mode="none")
        assert snap["status"] == "failed", snap
        assert snap["error"].startswith(f"no space left on the disk holding {snapshots} ("), snap
        assert "free some space there" in snap["error"]
        assert "internal error" not in snap["error"]
        assert list(snapshots.iterdir()) == []  # no partial archive left behind
    finally:
        subprocess.run(["umount", str(snapshots)], check=True)
    again = capture(server.operator, w["id"], mode="none")
    assert again["status"] == "ready", again
    listed = server.viewer.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
    assert {s["id"]: s["status"] for s in listed} == {snap["id"]: "failed", again["id"]: "ready"}


def test_an_operator_does_not_download_a_host_directory(server: Server, project: str) -> None:
    """Attacker pass (helper 44): an admin mounts a host directory (an ``absolute``
    volume) into a workload; an operator captured it and downloaded the host's files.
    Capturing stays theirs; the archive is the admin's to read, also after the volume is
    gone from the workload."""
    host = server.volume_root / unique("hostdata")
    host.mkdir()
    (host / "creds.txt").write_text("host-only-secret")
    w = create_workload(server, project, config={"image": "moorage-test/httpd:1"})
    url = f"/api/workloads/{w['id']}"
    volume = {"name": "hostdata", "scope": "absolute", "source": str(host), "target": "/data"}
    assert server.admin.put(f"{url}/volumes", json=[volume]).status_code == 200
    snap = capture(server.operator, w["id"], mode="none")
    assert snap["status"] == "ready", snap
    archive = f"{url}/snapshots/{snap['id']}/archive"
    error = assert_error(server.operator.get(archive), 403, "needs_admin")
    assert "absolute_volume" in error["message"], error
    assert server.admin.get(archive).status_code == 200
    assert server.admin.put(f"{url}/volumes", json=[]).status_code == 200
    assert_error(server.operator.get(archive), 403, "needs_admin")
