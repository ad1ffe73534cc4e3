"""A restore never loses what it replaced, whatever the volume holds (issue 11's reproduction).

Through a real server and the real engine: a volume with symlinks (certbot's
``live/`` tree, a ``latest -> v42`` link, links to absolute and missing paths),
names with a backslash, a newline and bytes that are not UTF-8, a hard-link group,
a fifo, a sticky directory, ``user.*`` attributes and a sparse VM image is
restored over, and restoring the pre-restore snapshot must give that tree back
exactly, at lstat level; the sparse image must stay sparse both ways.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, unique
from tests.integration.helpers import wait_deployment, wait_until
from tests.integration.test_restore import Site, site_workload
from tests.unit.snapshots.trees import allocated, tree_state

MiB = 1 << 20
SPARSE = 512 * MiB


@pytest.fixture
def odd(server: Server) -> Iterator[Site]:
    """The issue's workload: an image app with one stage volume ``data``, deployed."""
    project = unique("odd")
    workload, port = site_workload(server.admin, project)
    r = server.admin.put(
        f"/api/workloads/{workload['id']}/volumes",
        json=[{"name": "data", "scope": "stage", "source": "odd/data", "target": "/data"}],
    )
    assert r.status_code == 200, r.text
    live = server.data_dir / "volumes" / project / "production" / "odd" / "data"
    live.mkdir(parents=True)
    d = server.admin.post(f"/api/workloads/{workload['id']}/deploy").json()
    assert wait_deployment(server.admin, workload["id"], d["id"])["status"] == "succeeded"
    site = Site(server.admin, workload, port, {"data": live})
    yield site
    server.admin.delete(f"/api/workloads/{site.id}", params={"purge_snapshots": "true"})


def _sparse(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(SPARSE)
        f.seek(300 * MiB)
        f.write(b"a page in the middle")


def _everything(live: Path) -> None:
    """Every kind of entry a container can leave in a volume, beside ``orders.csv``."""
    os.symlink("orders.csv", live / "latest.csv")
    (live / "report\\2025.txt").write_text("backslash\n")
    (live / "two\nlines.txt").write_text("newline\n")
    Path(os.fsdecode(bytes(live) + b"/caf\xe9.txt")).write_text("latin-1\n")
    certs = live / "letsencrypt"
    (certs / "archive" / "example.org").mkdir(parents=True)
    (certs / "live" / "example.org").mkdir(parents=True)
    for name in ("cert1.pem", "privkey1.pem"):
        (certs / "archive" / "example.org" / name).write_text(f"-----{name}-----\n")
        os.symlink(
            f"../../archive/example.org/{name}",
            certs / "live" / "example.org" / name.replace("1", ""),
        )
    os.symlink("/etc/ssl/certs", live / "system-certs")
    os.symlink("../../../nowhere", live / "dangling")
    os.link(live / "orders.csv", live / "orders-hardlink.csv")
    os.mkfifo(live / "control.fifo")
    (live / "tmp").mkdir()
    os.chmod(live / "tmp", 0o1777)
    os.setxattr(live / "orders.csv", "user.origin", b"import \x00\xff")
    os.chown(live / "report\\2025.txt", 999, 999)
    os.utime(live / "tmp", ns=(1_234_567_890_123_456_789, 1_234_567_890_123_456_789))


def _wait_ready(site: Site, sid: str) -> dict[str, Any]:
    url = f"/api/workloads/{site.id}/snapshots/{sid}"
    wait_until(lambda: site.api.get(url).json()["status"] != "capturing", 120, "the snapshot")
    snap = dict(site.api.get(url).json())
    assert snap["status"] == "ready", snap
    return snap


def test_restoring_the_pre_restore_snapshot_gives_back_every_entry(odd: Site) -> None:
    live = odd.paths["data"]
    (live / "orders.csv").write_text("id,total\n1,9.99\n")
    _sparse(live / "vm.img")
    r = odd.api.post(f"/api/workloads/{odd.id}/snapshots", json={"mode": "none"})
    assert r.status_code == 202, r.text
    s1 = _wait_ready(odd, r.json()["id"])
    assert s1["manifest"]["volumes"][0]["allocated_bytes"] < MiB

    _everything(live)
    replaced = tree_state(live)
    assert replaced["latest.csv"][0] == "symlink" and replaced["control.fifo"][0] == "fifo"

    done = odd.wait_restore(odd.restore(s1["id"]).json()["id"], timeout=300)
    assert done["status"] == "succeeded", done
    assert sorted(os.listdir(live)) == ["orders.csv", "vm.img"]
    assert allocated(live / "vm.img") < MiB, "the sparse image came back allocated"
    assert (live / "vm.img").stat().st_size == SPARSE

    url = f"/api/workloads/{odd.id}/restores/{done['id']}"
    wait_until(
        lambda: odd.api.get(url).json()["pre_restore_snapshot_id"] is not None,
        120,
        "the pre-restore snapshot",
    )
    pre = _wait_ready(odd, odd.api.get(url).json()["pre_restore_snapshot_id"])
    counts = pre["manifest"]["volumes"][0]
    assert (counts["symlinks"], counts["hardlinks"], counts["fifos"]) == (5, 1, 1)
    wait_until(lambda: not odd.leftovers(), 60, "the moved-aside data to be packed and removed")

    back = odd.wait_restore(odd.restore(pre["id"]).json()["id"], timeout=300)
    assert back["status"] == "succeeded", back
    assert tree_state(live) == replaced
    assert os.readlink(live / "latest.csv") == "orders.csv"
    assert (live / "report\\2025.txt").read_text() == "backslash\n"
    assert allocated(live / "vm.img") < MiB


def test_a_volume_path_that_is_a_symlink_is_refused_and_nothing_changes(server: Server) -> None:
    """The swap renames the path itself: over a link it would replace the link and leave
    the real data where it was. Refused with 409 before anything is touched."""
    project = unique("lnk")
    workload, port = site_workload(server.admin, project)
    real = server.volume_root / f"{project}-real"
    real.mkdir()
    (real / "data.txt").write_text("live\n")
    link = server.volume_root / f"{project}-link"
    link.symlink_to(real)
    r = server.admin.put(
        f"/api/workloads/{workload['id']}/volumes",
        json=[{"name": "data", "scope": "absolute", "source": str(link), "target": "/data"}],
    )
    assert r.status_code == 200, r.text
    site = Site(server.admin, workload, port, {"data": real})
    r = site.api.post(f"/api/workloads/{site.id}/snapshots", json={"mode": "none"})
    assert r.status_code == 202, r.text
    snap = _wait_ready(site, r.json()["id"])
    (real / "data.txt").write_text("changed\n")
    before = tree_state(real)

    r = site.restore(snap["id"])
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "not_a_dir"
    assert "symbolic link" in r.json()["error"]["message"]
    assert link.is_symlink() and tree_state(real) == before
    assert site.api.get(f"/api/workloads/{site.id}/restores").json()["items"] == []
    server.admin.delete(f"/api/workloads/{site.id}", params={"purge_snapshots": "true"})
