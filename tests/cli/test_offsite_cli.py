"""``moorage targets``, ``moorage apps offsite`` and ``moorage snapshots copy`` against a
real server (SPEC sections 2, 11): each prints what it did, and a refusal is one line and
exit 1."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server, unique
from tests.storage.test_offsite_api import capture, copy_state, wait_snapshot, workload_with_data


def test_targets_apps_offsite_and_snapshots_copy(
    server: Server, project: str, tmp_path: Path
) -> None:
    admin, operator = server.admin.token, server.operator.token
    spec = tmp_path / "target.json"
    spec.write_text(json.dumps({"kind": "local", "config": {"path": str(tmp_path / "copies")}}))
    name = unique("st")
    made = server.cli(
        "targets",
        "create",
        name,
        "--spec",
        str(spec),
        "--passphrase-stdin",
        token=admin,
        stdin="a long cli passphrase\n",
    )
    assert made.returncode == 0, made.stderr
    target = made.stdout.strip().splitlines()[-1]
    assert target.startswith("st_")
    listed = server.cli("targets", "list", "--json", token=admin)
    assert target in {t["id"] for t in json.loads(listed.stdout)}
    tested = server.cli("targets", "test", name, token=admin)
    assert tested.returncode == 0 and tested.stdout.strip().endswith("ok"), tested.stderr

    w = workload_with_data(server.admin, server.url, server.data_dir, project, b"cli bytes")
    snap = capture(server.operator, w["id"])
    shown = server.cli("apps", "offsite", w["id"], token=operator)
    assert shown.stdout.strip() == "no off-site copies"
    refused = server.cli("apps", "offsite", w["id"], "--target", "st_nope", token=operator)
    assert refused.returncode == 1 and refused.stderr.startswith("error:")
    assert len(refused.stderr.strip().splitlines()) == 1
    copied = server.cli("snapshots", "copy", w["id"], "latest", "--target", target, token=operator)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.startswith(snap["id"])
    done = wait_snapshot(
        server.viewer, w["id"], snap["id"], lambda s: copy_state(s, target) == "verified"
    )
    assert done["copies"][0]["status"] == "verified"
    catalog = server.cli("targets", "catalog", name, "--json", token=admin)
    assert [e["snapshot_id"] for e in json.loads(catalog.stdout)] == [snap["id"]]
    gone = server.cli("targets", "delete", name, token=admin)
    assert gone.returncode == 0 and gone.stdout.strip() == "deleted"
