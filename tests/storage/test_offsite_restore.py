"""Restore from an off-site copy through a real ``moorage serve`` (SPEC sections 6, 11):
a restore whose local archive is gone fetches the verified copy, checked against the
recorded size and SHA-256, into a scratch file first and then runs the usual protocol;
a copy with a flipped byte or cut short on the target fails the restore before anything
reaches the live volume (which keeps its bytes), and leaves no archive or staging behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from moorage.offsite import layout
from moorage.storage.sftp import SftpStorage
from tests.conftest import Api, Server
from tests.storage.conftest import SftpServer, sftp_config
from tests.storage.test_offsite_api import (
    capture,
    copy_state,
    make_target,
    wait_snapshot,
    workload_with_data,
)


def copied(server: Server, project: str, sftp_server: SftpServer) -> dict[str, Any]:
    """A workload whose one snapshot has a verified copy on an SFTP target, then changed
    live data and no local archive."""
    config = sftp_config(sftp_server)
    target = make_target(server.admin, "sftp", config)
    payload = os.urandom(3 << 20)
    w = workload_with_data(server.admin, server.url, server.data_dir, project, payload)
    snap = capture(server.operator, w["id"])
    r = server.operator.put(f"/api/workloads/{w['id']}/offsite", json={"target_id": target})
    assert r.status_code == 200, r.text
    done = wait_snapshot(
        server.viewer,
        w["id"],
        snap["id"],
        lambda s: copy_state(s, target) in ("verified", "failed"),
    )
    assert copy_state(done, target) == "verified", done["copies"]
    live = server.data_dir / "volumes" / project / "production" / w["name"] / "d"
    (live / "blob").write_bytes(b"changed after the snapshot")
    archive = server.data_dir / "snapshots" / w["id"] / f"{snap['id']}.tar.zst"
    archive.unlink()
    store = SftpStorage().open(config)
    try:
        [held] = layout.held(store.list())
    finally:
        store.close()
    return {
        "workload": w,
        "snapshot": snap,
        "payload": payload,
        "live": live,
        "archive": archive,
        "object": Path(config["path"]) / held.key,
    }


def restore(api: Api, w: dict[str, Any], sid: str) -> dict[str, Any]:
    r = api.post(
        f"/api/workloads/{w['id']}/snapshots/{sid}/restore",
        headers={"X-Confirm-Restore": w["name"]},
    )
    assert r.status_code == 202, r.text
    url = f"/api/workloads/{w['id']}/restores/{r.json()['id']}"
    deadline = time.monotonic() + 120
    while (row := api.get(url).json())["status"] == "running":
        assert time.monotonic() < deadline, row
        time.sleep(0.2)
    return dict(row)


def test_a_restore_without_its_archive_comes_back_from_the_verified_copy(
    server: Server, project: str, sftp_server: SftpServer
) -> None:
    c = copied(server, project, sftp_server)
    row = restore(server.admin, c["workload"], c["snapshot"]["id"])
    assert row["status"] == "succeeded", row
    assert (c["live"] / "blob").read_bytes() == c["payload"]
    assert c["archive"].stat().st_size == c["snapshot"]["size"]  # back, local again


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_changed_copy_fails_the_restore_and_nothing_reaches_the_live_volume(
    server: Server, project: str, sftp_server: SftpServer, how: str
) -> None:
    c = copied(server, project, sftp_server)
    obj: Path = c["object"]
    data = bytearray(obj.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x40
    else:
        del data[len(data) - 70000 :]
    obj.write_bytes(bytes(data))
    row = restore(server.admin, c["workload"], c["snapshot"]["id"])
    assert row["status"] == "failed", row
    assert "does not decrypt" in row["error"], row
    assert (c["live"] / "blob").read_bytes() == b"changed after the snapshot"
    assert sorted(p.name for p in c["live"].iterdir()) == ["blob"]
    assert not c["archive"].exists()
    assert list(c["archive"].parent.glob("*.fetch*")) == []
    siblings = sorted(p.name for p in c["live"].parent.iterdir())
    assert siblings == ["d"], siblings  # no staging left beside the volume


def test_a_clone_without_its_archive_comes_back_from_the_verified_copy(
    server: Server, project: str, sftp_server: SftpServer
) -> None:
    c = copied(server, project, sftp_server)
    w = c["workload"]
    r = server.operator.post(
        f"/api/workloads/{w['id']}/snapshots/{c['snapshot']['id']}/clone",
        json={"name": f"{w['name']}-copy"},
    )
    assert r.status_code == 201, r.text
    made = server.data_dir / "volumes" / project / "production" / f"{w['name']}-copy" / "data"
    assert (made / "blob").read_bytes() == c["payload"]
    assert (c["live"] / "blob").read_bytes() == b"changed after the snapshot"  # untouched
    assert c["archive"].stat().st_size == c["snapshot"]["size"]
