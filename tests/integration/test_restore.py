"""Restore on the real engine through a real server process: the happy path, the crash
matrix (SIGKILL at every fault point, and during recovery), both swap paths, pre-flight
refusals, single-flight and auth. Volumes are compared byte for byte."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    Api,
    Server,
    admin_api,
    again,
    assert_error,
    free_port,
    login,
    start_server,
    stop_server,
    unique,
    wait_faulted,
)
from tests.integration.helpers import (
    containers,
    image_id,
    image_of,
    wait_deployment,
    wait_until,
)

NAME = "site"


def tree(path: Path) -> dict[str, str]:
    """Every entry under ``path``: directories, files with their SHA-256, and any other
    kind of entry by its type letter (``s`` for a socket)."""
    out: dict[str, str] = {}
    for directory, dirs, files in os.walk(path):
        rel = os.path.relpath(directory, path)
        for d in dirs:
            out[os.path.join(rel, d)] = "dir"
        for f in files:
            entry = Path(directory, f)
            mode = os.lstat(entry).st_mode
            out[os.path.join(rel, f)] = (
                hashlib.sha256(entry.read_bytes()).hexdigest()
                if stat.S_ISREG(mode)
                else stat.filemode(mode)[0]
            )
    return out


def write_tree(path: Path, label: str) -> None:
    """Replace what the directory holds with a small tree marked ``label``."""
    for child in list(path.iterdir()) if path.exists() else []:
        if child.is_dir():
            import shutil

            shutil.rmtree(child)
        else:
            child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / "index.html").write_text(f"{label}\n")
    (path / "nested" / "deeper").mkdir(parents=True)
    (path / "nested" / "deeper" / "blob.bin").write_bytes(os.urandom(70_000))
    (path / "empty-dir").mkdir()
    (path / f"only-in-{label}").write_text(label)


@dataclass
class Site:
    api: Api
    workload: dict[str, Any]
    port: int
    paths: dict[str, Path]  # volume name -> live host path

    @property
    def id(self) -> str:
        return str(self.workload["id"])

    def trees(self) -> dict[str, dict[str, str]]:
        return {name: tree(p) for name, p in self.paths.items()}

    def snapshot(self) -> dict[str, Any]:
        r = self.api.post(f"/api/workloads/{self.id}/snapshots", json={"mode": "stop"})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        wait_until(
            lambda: (
                self.api.get(f"/api/workloads/{self.id}/snapshots/{sid}").json()["status"]
                != "capturing"
            ),
            60,
            "the capture",
        )
        snap = self.api.get(f"/api/workloads/{self.id}/snapshots/{sid}").json()
        assert snap["status"] == "ready", snap
        return dict(snap)

    def restore(self, sid: str, **body: Any) -> httpx.Response:
        return self.api.post(
            f"/api/workloads/{self.id}/snapshots/{sid}/restore",
            json=body or None,
            headers={"X-Confirm-Restore": NAME},
        )

    def wait_restore(self, rid: str, timeout: float = 120) -> dict[str, Any]:
        url = f"/api/workloads/{self.id}/restores/{rid}"
        wait_until(
            lambda: self.api.get(url).json()["status"] != "running", timeout, "the restore to end"
        )
        return dict(self.api.get(url).json())

    def serves(self) -> str:
        deadline = time.monotonic() + 30
        while True:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/", timeout=2).text
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the app does not answer"
                time.sleep(0.3)

    def leftovers(self) -> list[str]:
        """Staging or moved-aside directories still beside any target."""
        found = []
        for p in self.paths.values():
            found += [c.name for c in p.parent.iterdir() if c.name.startswith(".moorage-")]
        return found


def site_workload(api: Api, project: str) -> tuple[dict[str, Any], int]:
    """A new project with the `site` image workload on a free loopback port."""
    assert api.post("/api/projects", json={"slug": project}).status_code == 201
    port = free_port()
    r = api.post(
        "/api/workloads",
        json={
            "name": NAME,
            "kind": "image",
            "project": project,
            "stage": "production",
            "config": {
                "image": "moorage-test/httpd:1",
                "ports": [{"container": 8080, "host": port}],
                "health": {"http": "/", "timeout_seconds": 30},
            },
        },
    )
    assert r.status_code == 201, r.text
    workload = r.json()
    return dict(workload), port


def make_site(api: Api, data_dir: Path, root: Path, project: str) -> Site:
    """An image workload serving its `www` volume, plus a project and an absolute volume."""
    workload, port = site_workload(api, project)
    absolute = root / f"{project}-abs"
    absolute.mkdir()
    r = api.put(
        f"/api/workloads/{workload['id']}/volumes",
        json=[
            {"name": "www", "scope": "stage", "source": "site/www", "target": "/www"},
            {"name": "shared", "scope": "project", "source": "shared", "target": "/shared"},
            {"name": "abs", "scope": "absolute", "source": str(absolute), "target": "/abs"},
        ],
    )
    assert r.status_code == 200, r.text
    paths = {
        "www": data_dir / "volumes" / project / "production" / "site" / "www",
        "shared": data_dir / "volumes" / project / "_shared" / "shared",
        "abs": absolute,
    }
    for name, p in paths.items():
        write_tree(p, f"old-{name}")
    d = api.post(f"/api/workloads/{workload['id']}/deploy").json()
    assert wait_deployment(api, workload["id"], d["id"])["status"] == "succeeded"
    return Site(api, workload, port, paths)


@pytest.fixture
def site(server: Server) -> Iterator[Site]:
    created = make_site(server.admin, server.data_dir, server.volume_root, unique("rs"))
    yield created
    server.admin.delete(f"/api/workloads/{created.id}", params={"purge_snapshots": "true"})


def test_restore_then_restore_back_from_the_pre_restore_snapshot(site: Site) -> None:
    snap = site.snapshot()
    old = site.trees()
    assert site.serves() == "old-www\n"
    for name, p in site.paths.items():
        write_tree(p, f"new-{name}")
    new = site.trees()
    assert site.serves() == "new-www\n"

    r = site.restore(snap["id"])
    assert r.status_code == 202, r.text
    done = site.wait_restore(r.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["swap"] in ("exchange", "rename")
    assert site.trees() == old
    assert site.serves() == "old-www\n"
    deployments = site.api.get(f"/api/workloads/{site.id}/deployments").json()["items"]
    assert deployments[0]["reason"] == f"restore:{done['id']}"

    # The replaced data is kept as a pre-restore snapshot, and nothing else is left.
    wait_until(
        lambda: (
            site.api.get(f"/api/workloads/{site.id}/restores/{done['id']}").json()[
                "pre_restore_snapshot_id"
            ]
            is not None
            and not site.leftovers()
        ),
        60,
        "the pre-restore snapshot",
    )
    pre_id = site.api.get(f"/api/workloads/{site.id}/restores/{done['id']}").json()[
        "pre_restore_snapshot_id"
    ]
    wait_until(
        lambda: (
            site.api.get(f"/api/workloads/{site.id}/snapshots/{pre_id}").json()["status"] == "ready"
        ),
        60,
        "the pre-restore snapshot to be ready",
    )
    pre = site.api.get(f"/api/workloads/{site.id}/snapshots/{pre_id}").json()
    assert pre["origin"] == "pre-restore"
    back = site.wait_restore(site.restore(pre_id).json()["id"])
    assert back["status"] == "succeeded", back
    assert site.trees() == new
    assert site.serves() == "new-www\n"
    listed = site.api.get(f"/api/workloads/{site.id}/restores").json()["items"]
    assert [x["id"] for x in listed] == [back["id"], done["id"]]
    audit = site.api.get("/api/audit", params={"target_id": site.id}).json()["items"]
    assert sum(a["action"] == "snapshot.restore" for a in audit) == 2


def test_latest_twice_restores_what_a_person_took_not_the_pre_restore(
    server: Server, site: Site
) -> None:
    """``latest`` is the newest snapshot a person or a schedule took or imported: a second
    ``restore ... latest`` restores the same data again, not the pre-restore snapshot
    the first one left (which silently undid the first restore)."""
    snap = site.snapshot()
    old = site.trees()
    for name, p in site.paths.items():
        write_tree(p, f"new-{name}")
    done = []
    for _ in range(2):
        run = server.cli(
            "snapshots", "restore", site.id, "latest", "--confirm", NAME, token=site.api.token
        )
        assert run.returncode == 0, run.stderr
        assert site.trees() == old
        [last, *_] = site.api.get(f"/api/workloads/{site.id}/restores").json()["items"]
        done.append(last)
        # The pre-restore snapshot is ready (the newest ready row) before `latest` is read.
        url = f"/api/workloads/{site.id}/restores/{last['id']}"
        wait_until(
            lambda url=url: site.api.get(url).json()["pre_restore_snapshot_id"] is not None,
            60,
            "the pre-restore snapshot",
        )
        pre_id = site.api.get(url).json()["pre_restore_snapshot_id"]
        pre_url = f"/api/workloads/{site.id}/snapshots/{pre_id}"
        wait_until(
            lambda pre_url=pre_url: site.api.get(pre_url).json()["status"] == "ready",
            60,
            "the pre-restore snapshot to be ready",
        )
    assert [d["snapshot_id"] for d in done] == [snap["id"], snap["id"]]
    assert done[0]["id"] != done[1]["id"]


def test_a_subset_restores_only_the_named_volumes(site: Site) -> None:
    snap = site.snapshot()
    for name, p in site.paths.items():
        write_tree(p, f"new-{name}")
    new = site.trees()
    done = site.wait_restore(site.restore(snap["id"], volumes=["shared"]).json()["id"])
    assert done["status"] == "succeeded" and done["volumes"] == ["shared"]
    after = site.trees()
    assert after["www"] == new["www"] and after["abs"] == new["abs"]
    assert "./only-in-old-shared" in after["shared"]


def test_confirmation_auth_and_single_flight(server: Server, site: Site) -> None:
    snap = site.snapshot()
    url = f"/api/workloads/{site.id}/snapshots/{snap['id']}/restore"
    before = site.trees()
    assert_error(server.admin.post(url), 428, "confirmation_required")
    r = server.admin.post(url, headers={"X-Confirm-Restore": "wrong"})
    assert "X-Confirm-Restore: site" in assert_error(r, 428)["message"]
    for api in (server.viewer, server.operator):
        assert_error(api.post(url, headers={"X-Confirm-Restore": NAME}), 403, "forbidden")
    client = login(server.url, "admin", ADMIN_PASSWORD)
    try:
        del client.headers["X-CSRF-Token"]
        r = client.post(url, headers={"X-Confirm-Restore": NAME})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    finally:
        client.close()
    assert site.api.get(f"/api/workloads/{site.id}/restores").json()["items"] == []
    assert site.trees() == before

    first = site.restore(snap["id"])
    assert first.status_code == 202
    second = site.restore(snap["id"])
    assert_error(second, 409, "restore_running")
    # The snapshot being restored from cannot be deleted under the restore.
    snap_url = f"/api/workloads/{site.id}/snapshots/{snap['id']}"
    assert_error(server.admin.delete(snap_url), 409, "restore_running")
    # A deploy asked for meanwhile waits for the restore, then runs.
    d = site.api.post(f"/api/workloads/{site.id}/deploy").json()
    done = site.wait_restore(first.json()["id"])
    assert done["status"] == "succeeded"
    assert server.admin.get(snap_url).json()["status"] == "ready"
    deployed = wait_deployment(site.api, site.id, d["id"])
    assert deployed["status"] == "succeeded"
    assert deployed["started_at"] >= done["finished_at"]


@pytest.mark.parametrize(
    "breakage", ["missing volume", "scope change", "outside roots", "checksum", "bad archive"]
)
def test_pre_flight_refusals_touch_nothing(server: Server, site: Site, breakage: str) -> None:
    snap = site.snapshot()
    for name, p in site.paths.items():
        write_tree(p, f"new-{name}")
    before = site.trees()
    running = containers(site.id, all_states=False)
    archive = server.data_dir / "snapshots" / site.id / f"{snap['id']}.tar.zst"
    if breakage == "missing volume":
        vols = site.api.get(f"/api/workloads/{site.id}/volumes").json()["items"]
        body = [
            {k: v[k] for k in ("name", "scope", "source", "target", "read_only")}
            for v in vols
            if v["name"] != "shared"
        ]
        assert site.api.put(f"/api/workloads/{site.id}/volumes", json=body).status_code == 200
        assert_error(site.restore(snap["id"]), 409, "volume_mismatch")
    elif breakage == "scope change":
        vols = site.api.get(f"/api/workloads/{site.id}/volumes").json()["items"]
        body = [{k: v[k] for k in ("name", "scope", "source", "target", "read_only")} for v in vols]
        for v in body:
            if v["name"] == "shared":
                v["scope"] = "stage"
        assert site.api.put(f"/api/workloads/{site.id}/volumes", json=body).status_code == 200
        assert_error(site.restore(snap["id"]), 409, "volume_mismatch")
    elif breakage == "outside roots":
        # The data dir is not below MOORAGE_VOLUME_ROOTS: an absolute source there is refused.
        r = site.api.put(
            f"/api/workloads/{site.id}/volumes",
            json=[
                {
                    "name": "abs",
                    "scope": "absolute",
                    "source": str(server.data_dir / "x"),
                    "target": "/abs",
                }
            ],
        )
        assert r.status_code == 422
        assert site.api.get(f"/api/workloads/{site.id}/restores").json()["items"] == []
    elif breakage == "checksum":
        data = bytearray(archive.read_bytes())
        data[len(data) // 2] ^= 0xFF
        archive.write_bytes(bytes(data))
        done = site.wait_restore(site.restore(snap["id"]).json()["id"])
        assert done["status"] == "failed" and "SHA-256" in done["error"]
    elif breakage == "bad archive":
        # Consistent checksum, broken content: the reader refuses it halfway.
        data = archive.read_bytes()
        truncated = data[: len(data) * 2 // 3]
        archive.write_bytes(truncated)
        import sqlite3

        db = sqlite3.connect(server.data_dir / "moorage.db")
        db.execute(
            "UPDATE snapshots SET size = ?, sha256 = ? WHERE id = ?",
            (len(truncated), hashlib.sha256(truncated).hexdigest(), snap["id"]),
        )
        db.commit()
        db.close()
        done = site.wait_restore(site.restore(snap["id"]).json()["id"])
        assert done["status"] == "failed", done
    assert site.trees() == before
    assert containers(site.id, all_states=False) == running
    assert site.serves() == "new-www\n"
    assert site.leftovers() == []


FAULTS = [
    ("restore.after_preflight", "old", "failed"),
    ("restore.after_extract", "old", "failed"),
    ("restore.after_journal", "old", "rolled_back"),
    ("restore.after_quiesce", "old", "rolled_back"),
    ("restore.after_swap.0", "old", "rolled_back"),
    ("restore.after_swap.1", "old", "rolled_back"),
    ("restore.after_swaps", "old", "rolled_back"),
    ("restore.after_redeploy", "new", "succeeded"),
]


def crash_case(
    tmp_path: Path,
    fault: str,
    swap: str,
    recovery_fault: str | None = None,
) -> tuple[Site, dict[str, dict[str, str]], dict[str, dict[str, str]], str, Path, dict[str, str]]:
    """Run a restore until the fault point kills the server; return what it had."""
    data = tmp_path / "var"
    root = tmp_path / "roots"
    root.mkdir()
    common = {"MOORAGE_VOLUME_ROOTS": str(root), "MOORAGE_RESTORE_SWAP": swap}
    proc, url, env = start_server(
        data, {**common, "MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": fault}
    )
    try:
        site = make_site(admin_api(url, env), data, root, unique("crash"))
        snap = site.snapshot()
        snapshot_trees = site.trees()
        for name, p in site.paths.items():
            write_tree(p, f"new-{name}")
        live_trees = site.trees()
        r = site.restore(snap["id"])
        assert r.status_code == 202, r.text
        wait_faulted(proc, data)
    finally:
        stop_server(proc)
    if recovery_fault is not None:
        # Recovery runs before the server answers, so this start dies before it is healthy.
        with pytest.raises(RuntimeError, match=f"faultpoint {recovery_fault}"):
            start_server(
                data,
                {**common, "MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": recovery_fault},
            )
    return site, snapshot_trees, live_trees, r.json()["id"], data, common


@pytest.mark.parametrize(("fault", "expect", "status"), FAULTS, ids=[f for f, _, _ in FAULTS])
def test_killed_at_every_fault_point_recovers_all_old_or_all_new(
    tmp_path: Path, fault: str, expect: str, status: str
) -> None:
    site, snapshot_trees, live_trees, rid, data, common = crash_case(tmp_path, fault, "auto")
    assert_recovered(site, data, common, rid, snapshot_trees, live_trees, expect, status)


def assert_recovered(
    site: Site,
    data: Path,
    common: dict[str, str],
    rid: str,
    snapshot_trees: dict[str, Any],
    live_trees: dict[str, Any],
    expect: str,
    status: str,
) -> None:
    proc, url, _env = start_server(data, common)
    try:
        site.api = again(site.api, url)
        # Recovery ran before the server answered: the volumes are decided already.
        assert site.trees() == (live_trees if expect == "old" else snapshot_trees)
        row = site.api.get(f"/api/workloads/{site.id}/restores/{rid}").json()
        assert row["status"] == status, row
        wait_until(lambda: not site.leftovers(), 60, "staging and moved-aside data to go")
        wait_until(
            lambda: (
                not list((data / "journals").glob("*.json"))
                if (data / "journals").exists()
                else True
            ),
            60,
            "the journal to go",
        )
        assert site.serves() == ("new-www\n" if expect == "old" else "old-www\n")
        if status == "succeeded":
            pre = site.api.get(f"/api/workloads/{site.id}/restores/{rid}").json()[
                "pre_restore_snapshot_id"
            ]
            assert pre is not None
            wait_until(
                lambda: (
                    site.api.get(f"/api/workloads/{site.id}/snapshots/{pre}").json()["status"]
                    == "ready"
                ),
                60,
                "the pre-restore snapshot",
            )
    finally:
        stop_server(proc)


def test_the_two_rename_fallback_crashes_between_renames_safely(tmp_path: Path) -> None:
    site, snapshot_trees, live_trees, rid, data, common = crash_case(
        tmp_path, "restore.after_swap.1", "rename"
    )
    assert_recovered(site, data, common, rid, snapshot_trees, live_trees, "old", "rolled_back")


def test_killed_during_recovery_recovers_on_the_next_start(tmp_path: Path) -> None:
    site, snapshot_trees, live_trees, rid, data, common = crash_case(
        tmp_path, "restore.after_swaps", "auto", recovery_fault="restore.recover.after_volume.1"
    )
    assert_recovered(site, data, common, rid, snapshot_trees, live_trees, "old", "rolled_back")


def test_the_rename_fallback_restores_too(tmp_path: Path) -> None:
    data = tmp_path / "var"
    root = tmp_path / "roots"
    root.mkdir()
    proc, url, env = start_server(
        data, {"MOORAGE_VOLUME_ROOTS": str(root), "MOORAGE_RESTORE_SWAP": "rename"}
    )
    try:
        site = make_site(admin_api(url, env), data, root, "fallback")
        snap = site.snapshot()
        old = site.trees()
        for name, p in site.paths.items():
            write_tree(p, f"new-{name}")
        done = site.wait_restore(site.restore(snap["id"]).json()["id"])
        assert done["status"] == "succeeded" and done["swap"] == "rename"
        assert site.trees() == old
        wait_until(lambda: not site.leftovers(), 60, "the moved-aside data to be packed")
    finally:
        stop_server(proc)


def test_too_little_free_space_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    data = tmp_path / "var"
    root = tmp_path / "roots"
    small = root / "small"
    small.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        proc, url, env = start_server(data, {"MOORAGE_VOLUME_ROOTS": str(root)})
        api = admin_api(url, env)
        workload: dict[str, Any] | None = None
        try:
            project = unique("space")
            workload, port = site_workload(api, project)
            volume = small / "data"
            volume.mkdir()
            for i in range(3):
                (volume / f"part-{i}.bin").write_bytes(os.urandom(1 << 20))
            r = api.put(
                f"/api/workloads/{workload['id']}/volumes",
                json=[
                    {"name": "data", "scope": "absolute", "source": str(volume), "target": "/data"}
                ],
            )
            assert r.status_code == 200, r.text
            d = api.post(f"/api/workloads/{workload['id']}/deploy").json()
            assert wait_deployment(api, workload["id"], d["id"])["status"] == "succeeded"
            site = Site(api, workload, port, {"data": volume})
            snap = site.snapshot()
            need = sum(int(v["bytes"]) for v in snap["manifest"]["volumes"])
            assert need >= 3 << 20

            # Fill the tmpfs so that only half of what the snapshot holds is free.
            st = os.statvfs(small)
            free = st.f_bavail * st.f_frsize
            with open(small / "filler", "wb") as out:
                out.write(b"\0" * (free - need // 2))
            st = os.statvfs(small)
            assert st.f_bavail * st.f_frsize < need
            before = tree(volume)
            running = containers(site.id, all_states=False)
            assert running

            assert_error(site.restore(snap["id"]), 409, "no_space")

            assert tree(volume) == before
            assert [p for p in os.listdir(small) if p.startswith(".moorage-")] == []
            assert sorted(os.listdir(small)) == ["data", "filler"]
            assert containers(site.id, all_states=False) == running
            assert site.serves() == "hello from v1\n"
            assert api.get(f"/api/workloads/{site.id}/restores").json()["items"] == []
        finally:
            if workload is not None:
                api.delete(f"/api/workloads/{workload['id']}", params={"purge_snapshots": "true"})
            stop_server(proc)
    finally:
        if subprocess.run(["umount", str(small)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(small)], check=True)


def test_restore_deploy_and_reconcile_do_not_deadlock(site: Site) -> None:
    snap = site.snapshot()
    old = site.trees()
    for name, p in site.paths.items():
        write_tree(p, f"new-{name}")
    restore_posted = threading.Event()
    results: dict[str, Any] = {}

    def restore() -> None:
        r = site.restore(snap["id"])
        assert r.status_code == 202, r.text
        restore_posted.set()
        results["restore"] = site.wait_restore(r.json()["id"], timeout=55)

    def deploy() -> None:
        # Asked for while the restore runs, so it has to wait for the restore's lock.
        restore_posted.wait(30)
        results["asked"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        r = site.api.post(f"/api/workloads/{site.id}/deploy")
        assert r.status_code == 202, r.text
        results["deploy"] = wait_deployment(site.api, site.id, r.json()["id"], timeout=55)

    def reconcile() -> None:
        restore_posted.wait(30)
        results["reconcile"] = site.api.post(f"/api/workloads/{site.id}/reconcile")

    errors: dict[str, BaseException] = {}

    def guarded(step: Any) -> Any:
        def body() -> None:
            try:
                step()
            except BaseException as exc:  # reported by the main thread
                errors[step.__name__] = exc

        return body

    threads = [
        threading.Thread(target=guarded(f), name=f.__name__, daemon=True)
        for f in (restore, deploy, reconcile)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"still waiting after 60 s: {', '.join(stuck)}"
    assert not errors, f"failed: {errors!r}"

    done, deployed = results["restore"], results["deploy"]
    assert done["status"] == "succeeded", done
    assert deployed["status"] == "succeeded", deployed
    # The deploy was asked for while the restore ran, and ran only after it: its request
    # waited for the restore's lock (services.guard), so even its row comes after.
    assert results["asked"] < done["finished_at"] <= deployed["created_at"]
    assert deployed["created_at"] <= deployed["started_at"]
    assert results["reconcile"].status_code == 200, results["reconcile"].text
    assert results["reconcile"].json()["status"] in ("running", "deploying")
    assert site.trees() == old
    assert site.serves() == "old-www\n"


def test_a_volume_another_workload_mounts_is_refused(server: Server, site: Site) -> None:
    snap = site.snapshot()
    project = site.workload["project"]
    r = server.admin.post(
        "/api/workloads",
        json={
            "name": "neighbour",
            "kind": "image",
            "project": project,
            "stage": "staging",
            "config": {"image": "moorage-test/httpd:1"},
        },
    )
    assert r.status_code == 201, r.text
    neighbour = r.json()["id"]
    try:
        # Sharing a directory is said on both sides (SPEC section 9), then a restore refuses it.
        also = {"name": "also-shared", "scope": "project", "source": "shared", "target": "/s"}
        url = f"/api/workloads/{site.workload['id']}/volumes"
        mine = [
            {
                **{k: v for k, v in item.items() if k not in ("host_path", "problem")},
                "shared": item["name"] == "shared",
            }
            for item in server.admin.get(url).json()["items"]
        ]
        assert server.admin.put(url, json=mine).status_code == 200
        r = server.admin.put(f"/api/workloads/{neighbour}/volumes", json=[{**also, "shared": True}])
        assert r.status_code == 200, r.text
        before = site.trees()
        error = assert_error(site.restore(snap["id"]), 409, "shared_volume")
        assert "neighbour" in error["message"]
        assert site.trees() == before and site.leftovers() == []
        # Restoring only the volumes nobody else mounts is fine.
        done = site.wait_restore(site.restore(snap["id"], volumes=["www"]).json()["id"])
        assert done["status"] == "succeeded", done
    finally:
        server.admin.delete(f"/api/workloads/{neighbour}")


# --- what a restore starts, and what it keeps (issue 11) ------------------------------


def last_success(api: Api, workload_id: str) -> dict[str, Any]:
    items = api.get(f"/api/workloads/{workload_id}/deployments").json()["items"]
    return next(d for d in items if d["status"] == "succeeded")


def test_a_never_deployed_workload_is_restored_without_a_container(server: Server) -> None:
    api = server.admin
    workload, port = site_workload(api, unique("nd"))
    site = Site(api, workload, port, {})
    try:
        r = api.put(
            f"/api/workloads/{site.id}/volumes",
            json=[{"name": "www", "scope": "stage", "source": "nd/www", "target": "/www"}],
        )
        assert r.status_code == 200, r.text
        site.paths["www"] = server.data_dir / "volumes" / workload["project"] / "production"
        site.paths["www"] = site.paths["www"] / "nd" / "www"
        write_tree(site.paths["www"], "old-www")
        snap = site.snapshot()
        old = site.trees()
        write_tree(site.paths["www"], "new-www")

        done = site.wait_restore(site.restore(snap["id"]).json()["id"])

        assert done["status"] == "succeeded" and done["error"] is None, done
        assert site.trees() == old
        assert containers(site.id) == []
        assert api.get(f"/api/workloads/{site.id}/deployments").json()["items"] == []
        # Nor does reconcile start one: neither the loop (it runs every 2 s) nor a request.
        assert api.post(f"/api/workloads/{site.id}/reconcile").json()["status"] == "never_deployed"
        time.sleep(5)
        assert containers(site.id) == []
        assert api.get(f"/api/workloads/{site.id}").json()["status"] == "never_deployed"
    finally:
        api.delete(f"/api/workloads/{site.id}", params={"purge_snapshots": "true"})


def test_after_a_restore_the_last_success_carries_the_running_artifact(
    server: Server, site: Site
) -> None:
    deployed = last_success(site.api, site.id)
    snap = site.snapshot()
    done = site.wait_restore(site.restore(snap["id"]).json()["id"])
    assert done["status"] == "succeeded" and done["error"] is None, done

    after = last_success(site.api, site.id)
    assert after["reason"] == f"restore:{done['id']}"
    assert after["artifact"] == deployed["artifact"]
    [running] = containers(site.id, all_states=False)
    assert running == after["artifact"]["container"]
    assert image_of(running) == after["artifact"]["image_id"] == image_id("moorage-test/httpd:1")
    assert site.serves() == "old-www\n"
    # Promote-from reads the same artifact it read before the restore.
    r = server.admin.post(
        "/api/workloads",
        json={
            "name": "next",
            "kind": "image",
            "project": site.workload["project"],
            "stage": "staging",
            "config": {"image": "moorage-test/httpd:2"},
        },
    )
    assert r.status_code == 201, r.text
    target = r.json()["id"]
    r = server.admin.post(f"/api/workloads/{target}/promote-from", json={"source": site.id})
    assert r.status_code == 202, r.text
    promoted = server.admin.get(f"/api/workloads/{target}").json()["config"]["image"]
    ran = deployed["artifact"]
    assert promoted in (ran["digest"], f"{ran['image'].split('@')[0]}@{ran['image_id']}")
    server.admin.delete(f"/api/workloads/{target}")


def test_reconcile_after_a_restore_brings_back_what_was_deployed_not_an_edit(
    site: Site,
) -> None:
    deployed = last_success(site.api, site.id)
    snap = site.snapshot()
    # Saved, never deployed: another image and another command.
    r = site.api.patch(
        f"/api/workloads/{site.id}",
        json={"config": {"image": "moorage-test/httpd:2", "command": ["sh", "-c", "exit 3"]}},
    )
    assert r.status_code == 200, r.text
    done = site.wait_restore(site.restore(snap["id"]).json()["id"])
    assert done["status"] == "succeeded", done
    [before] = containers(site.id, all_states=False)
    subprocess.run(["docker", "rm", "-f", before], check=True, capture_output=True)

    wait_until(lambda: containers(site.id, all_states=False) != [], 30, "reconcile")

    [again] = containers(site.id, all_states=False)
    assert again == before and not again.endswith("_None")
    assert image_of(again) == deployed["artifact"]["image_id"] == image_id("moorage-test/httpd:1")
    assert site.serves() == "old-www\n"
    assert last_success(site.api, site.id)["artifact"] == deployed["artifact"]


def test_a_replaced_tree_holding_a_socket_is_kept_and_named(server: Server, site: Site) -> None:
    snap = site.snapshot()
    old = site.trees()
    write_tree(site.paths["www"], "new-www")
    replaced = tree(site.paths["www"])
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(site.paths["www"] / "app.sock"))
    try:
        run = server.cli(
            "snapshots", "restore", site.id, snap["id"], "--confirm", NAME, token=site.api.token
        )
    finally:
        listener.close()
    assert run.returncode == 0, run.stderr
    [done] = site.api.get(f"/api/workloads/{site.id}/restores").json()["items"]
    assert done["status"] == "succeeded"
    assert site.trees() == old
    # Every moved-aside tree stays where the restore says, whole, with the socket.
    kept = [Path(p) for p in done["kept_paths"]]
    assert sorted(p.name for p in kept) == sorted(site.leftovers())
    assert len(kept) == len(site.paths)
    www = next(p for p in kept if p.parent == site.paths["www"].parent)
    assert stat.S_ISSOCK(os.lstat(www / "app.sock").st_mode)
    assert tree(www) == {**replaced, "./app.sock": "s"}
    assert "app.sock" in done["kept_reason"]
    assert all(str(p) in done["kept_reason"] for p in kept)
    # The CLI says so too; what could be packed is a ready pre-restore snapshot.
    assert str(www) in run.stdout and "app.sock" in run.stdout
    pre = site.api.get(f"/api/workloads/{site.id}/snapshots/{done['pre_restore_snapshot_id']}")
    assert pre.json()["status"] == "ready"
    assert not list((server.data_dir / "journals").glob("*.json"))
