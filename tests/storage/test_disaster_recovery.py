"""Disaster recovery end to end (SPEC section 11), on the real engine and real servers:
two deployed workloads with data are copied to an SFTP target and the instance backs
itself up there (``moorage backup create``); then the machine is "lost": the server is
killed, its containers removed and its whole data directory (database, volumes,
snapshots, instance key) deleted. On the empty directory ``moorage instance restore``
brings the instance back from the target with its passphrase alone; a new ``moorage
serve`` answers the old admin token, the restored target's sealed credentials still
open (its probe passes), and restoring each workload's latest snapshot fetches it from
the target: both serve the same bytes again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import (
    MOORAGE,
    Api,
    admin_api,
    free_port,
    start_server,
    stop_server,
    unique,
)
from tests.integration.helpers import deploy, get_text
from tests.storage.conftest import SftpServer, sftp_config
from tests.storage.test_offsite_api import (
    PASSPHRASE,
    capture,
    copy_state,
    make_target,
    wait_snapshot,
)
from tests.storage.test_offsite_restore import restore


def site(api: Api, data_dir: Path, project: str, text: str) -> dict[str, Any]:
    port = free_port()
    name = unique("site")
    r = api.post(
        "/api/workloads",
        json={
            "name": name,
            "kind": "image",
            "project": project,
            "stage": "production",
            "config": {
                "image": "moorage-test/httpd:1",
                "ports": [{"container": 8080, "host": port}],
            },
        },
    )
    assert r.status_code == 201, r.text
    w = dict(r.json())
    r = api.put(
        f"/api/workloads/{w['id']}/volumes",
        json=[{"name": "www", "scope": "stage", "source": f"{name}/www", "target": "/www"}],
    )
    assert r.status_code == 200, r.text
    www = data_dir / "volumes" / project / "production" / name / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text(text)
    (www / "big.bin").write_bytes(os.urandom(2 << 20))
    assert deploy(api, w["id"])["status"] == "succeeded"
    assert get_text(port) == text
    return {**w, "port": port, "www": www}


def remove_containers(workload_id: str) -> None:
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=moorage.workload={workload_id}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=True)


def test_a_lost_machine_comes_back_from_its_target(tmp_path: Path, sftp_server: SftpServer) -> None:
    data_dir = tmp_path / "var"
    proc, url, env = start_server(data_dir)
    config = sftp_config(sftp_server)
    try:
        api = admin_api(url, env)
        project = unique("p")
        assert api.post("/api/projects", json={"slug": project}).status_code == 201
        target = make_target(api, "sftp", config)
        sites = [site(api, data_dir, project, f"site {n}\n") for n in (1, 2)]
        bigs = {s["id"]: (s["www"] / "big.bin").read_bytes() for s in sites}
        for s in sites:
            r = api.put(f"/api/workloads/{s['id']}/offsite", json={"target_id": target})
            assert r.status_code == 200, r.text
            snap = capture(api, s["id"])
            assert snap["status"] == "ready", snap
            wait_snapshot(api, s["id"], snap["id"], lambda x: copy_state(x, target) == "verified")
            s["snapshot"] = snap["id"]
        cli_env = {**env, "MOORAGE_URL": url, "MOORAGE_TOKEN": api.token or ""}
        made = subprocess.run(
            [MOORAGE, "backup", "create", "--target", target],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("instance/")
    finally:
        proc.kill()
        proc.wait()
    # The machine is lost: containers, database, volumes, snapshots, instance key.
    for s in sites:
        remove_containers(s["id"])
    shutil.rmtree(data_dir)

    spec = tmp_path / "target.json"
    spec.write_text(json.dumps({"kind": "sftp", "config": config}))
    offline = {**env, "MOORAGE_DATA_DIR": str(data_dir)}
    wrong = subprocess.run(
        [MOORAGE, "instance", "restore", "--target", str(spec), "--passphrase-stdin"],
        env=offline,
        input="not the passphrase\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 1 and "passphrase" in wrong.stderr
    assert not (data_dir / "moorage.db").exists()
    back = subprocess.run(
        [MOORAGE, "instance", "restore", "--target", str(spec), "--passphrase-stdin"],
        env=offline,
        input=PASSPHRASE + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert back.returncode == 0, back.stderr
    again = subprocess.run(
        [MOORAGE, "instance", "restore", "--target", str(spec), "--passphrase-stdin"],
        env=offline,
        input=PASSPHRASE + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "empty data directory" in again.stderr

    proc, url, env = start_server(data_dir)
    try:
        old = Api(url, api.token)  # the old admin token works: users and tokens are back
        listed = {w["id"] for w in old.get("/api/workloads").json()["items"]}
        assert {s["id"] for s in sites} <= listed
        probe = old.post(f"/api/storage-targets/{target}/test").json()
        assert probe["ok"] is True, probe  # its sealed credentials still open
        for s in sites:
            assert not (data_dir / "snapshots" / s["id"] / f"{s['snapshot']}.tar.zst").exists()
            done = restore(old, s, s["snapshot"])
            assert done["status"] == "succeeded", done
            assert deploy(old, s["id"])["status"] == "succeeded"
        for n, s in enumerate(sites, 1):
            assert get_text(s["port"]) == f"site {n}\n"
            assert (s["www"] / "big.bin").read_bytes() == bigs[s["id"]]
    finally:
        stop_server(proc)
