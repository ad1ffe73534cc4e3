"""Restore into a new workload (``POST .../snapshots/{sid}/clone``, SPEC section 10) through a
real server process on the real engine: the clone serves the snapshot's bytes from volumes
of its own, the source's containers and bytes stay as they were, and every refusal leaves
nothing behind (no workload, no directory, no audit row)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    Server,
    admin_api,
    assert_error,
    start_server,
    stop_server,
    unique,
    wait_faulted,
)
from tests.integration.helpers import (
    containers,
    crash_server,
    get_text,
    wait_deployment,
    wait_until,
)
from tests.integration.test_restore import NAME, Site, site_workload, tree, write_tree


def make_source(server: Server, project: str) -> Site:
    """The `site` image workload serving its stage volume `www`, with a project volume and
    a secret in its env; deployed."""
    api = server.admin
    workload, port = site_workload(api, project)
    wid = workload["id"]
    r = api.put(
        f"/api/workloads/{wid}/volumes",
        json=[
            {"name": "www", "scope": "stage", "source": "site/www", "target": "/www"},
            {"name": "shared", "scope": "project", "source": "shared", "target": "/shared"},
        ],
    )
    assert r.status_code == 200, r.text
    r = api.put(
        f"/api/workloads/{wid}/env",
        json={"GREETING": {"value": "hi"}, "TOKEN": {"value": "s3cret", "secret": True}},
    )
    assert r.status_code == 200, r.text
    base = server.data_dir / "volumes" / project
    paths = {"www": base / "production" / "site" / "www", "shared": base / "_shared" / "shared"}
    for name, p in paths.items():
        write_tree(p, f"old-{name}")
    d = api.post(f"/api/workloads/{wid}/deploy").json()
    assert wait_deployment(api, wid, d["id"])["status"] == "succeeded"
    return Site(api, workload, port, paths)


@pytest.fixture
def source(server: Server) -> Iterator[Site]:
    project = unique("cl")
    made = make_source(server, project)
    yield made
    for w in server.admin.get("/api/workloads", params={"project": project}).json()["items"]:
        server.admin.delete(f"/api/workloads/{w['id']}", params={"purge_snapshots": "true"})


def audit_rows(server: Server) -> int:
    return len(server.admin.get("/api/audit", params={"limit": 1000}).json()["items"])


def clone(site: Site, sid: str, api: Any = None, **body: Any) -> httpx.Response:
    return (api or site.api).post(f"/api/workloads/{site.id}/snapshots/{sid}/clone", json=body)


def test_clone_serves_the_snapshot_and_leaves_the_source_alone(
    server: Server, source: Site
) -> None:
    snap = source.snapshot()
    snapped = source.trees()
    for name, p in source.paths.items():
        write_tree(p, f"new-{name}")  # the source moves on after the snapshot
    live = source.trees()
    before = containers(source.id)
    before_ids = httpx_ids(before)
    r = clone(source, snap["id"], name="site-copy", stage="staging", deploy=True)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == "site-copy" and made["stage"] == "staging"
    assert made["kind"] == "image" and made["id"] != source.id
    project = source.workload["project"]
    # Volumes re-based to the clone, never shared with the source.
    vols = {
        v["name"]: v
        for v in server.admin.get(f"/api/workloads/{made['id']}/volumes").json()["items"]
    }
    assert vols["www"]["source"] == "site-copy/www" and vols["www"]["scope"] == "stage"
    assert vols["shared"]["source"] == "staging/site-copy/shared"
    assert not any(v["shared"] for v in vols.values())
    base = server.data_dir / "volumes" / project
    clone_paths = {
        "www": base / "staging" / "site-copy" / "www",
        "shared": base / "_shared" / "staging" / "site-copy" / "shared",
    }
    assert {n: tree(p) for n, p in clone_paths.items()} == snapped
    # Env copied, secret included (kept secret).
    env = server.admin.get(f"/api/workloads/{made['id']}/env").json()
    assert env["GREETING"] == {"value": "hi", "secret": False}
    assert env["TOKEN"]["secret"] is True and env["TOKEN"]["value"] is None
    revealed = server.admin.get(f"/api/workloads/{made['id']}/env/TOKEN")
    assert revealed.json()["value"] == "s3cret", revealed.text
    # It deploys and serves the snapshot's page on a port of its own.
    deps = server.admin.get(f"/api/workloads/{made['id']}/deployments").json()["items"]
    assert deps, "deploy: true queued no deployment"
    done = wait_deployment(server.admin, made["id"], deps[0]["id"])
    assert done["status"] == "succeeded", done["log"]
    cfg = server.admin.get(f"/api/workloads/{made['id']}").json()["config"]
    assert cfg["ports"] == [{"container": 8080, "protocol": "tcp"}]
    url = done["artifact"]["urls"][0]
    assert httpx.get(url + "index.html", timeout=5).text == "old-www\n"
    # The source: same containers, still serving its own (newer) bytes.
    assert containers(source.id) == before and httpx_ids(before) == before_ids
    assert source.trees() == live
    assert get_text(source.port, "/index.html") == "new-www\n"
    # One audit row for the clone.
    rows = server.admin.get(
        "/api/audit", params={"target_type": "workload", "target_id": made["id"]}
    ).json()["items"]
    assert [r["action"] for r in rows if r["action"] == "snapshot.clone"] == ["snapshot.clone"]
    assert not list(Path(server.data_dir, "clones").glob("cl_*"))


def httpx_ids(names: list[str]) -> list[str]:
    import subprocess

    if not names:
        return []
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_clone_refusals_change_nothing(server: Server, source: Site) -> None:
    snap = source.snapshot()
    sid = snap["id"]
    project = source.workload["project"]
    base = server.data_dir / "volumes" / project
    workloads_before = server.admin.get("/api/workloads", params={"project": project}).json()
    audit_before = audit_rows(server)
    listing_before = sorted(p.name for p in base.rglob("*") if p.name.startswith(".moorage"))

    assert_error(clone(source, sid, name=NAME), 409, "duplicate")
    assert_error(clone(source, sid, name="Bad Name"), 422, "invalid_slug")
    assert_error(clone(source, sid, name="x", stage="nowhere"), 422, "unknown_stage")
    assert_error(clone(source, sid, name="x", extra=1), 422, "invalid_request")
    assert_error(clone(source, sid), 422, "invalid_request")
    assert_error(clone(source, "sn_missing", name="x"), 404)
    assert_error(
        server.admin.post("/api/workloads/wl_missing/snapshots/sn_x/clone", json={"name": "x"}),
        404,
    )
    assert_error(clone(source, sid, api=server.viewer, name="x"), 403, "forbidden")
    assert_error(clone(source, sid, api=server.anonymous, name="x"), 401)
    # A directory left at the clone's path by an earlier workload is not overwritten.
    squatter = base / "production" / "taken" / "www"
    squatter.mkdir(parents=True)
    (squatter / "keep.txt").write_text("mine")
    assert_error(clone(source, sid, name="taken"), 409, "volume_in_use")
    assert (squatter / "keep.txt").read_text() == "mine"
    # A clone whose directory would lie inside another workload's live volume (the
    # project volume `production` of `roomy` is <project>/_shared/production, and the
    # clone's project volume would be _shared/production/<clone>/shared) is refused
    # before anything is unpacked: that container could swap a directory on the path
    # for a link and send the unpacking out of the data dir.
    roomy = server.admin.post(
        "/api/workloads",
        json={"name": unique("roomy"), "kind": "image", "project": project,
              "stage": "staging", "config": {"image": "moorage-test/httpd:1"}},
    ).json()  # fmt: skip
    r = server.admin.put(
        f"/api/workloads/{roomy['id']}/volumes",
        json=[{"name": "all", "scope": "project", "source": "production", "target": "/all"}],
    )
    assert r.status_code == 200, r.text
    audit_before = audit_rows(server)
    workloads_before = server.admin.get("/api/workloads", params={"project": project}).json()
    assert_error(clone(source, sid, api=server.operator, name="inside"), 409, "volume_nested")
    assert not (base / "_shared" / "production").exists() or not any(
        (base / "_shared" / "production").iterdir()
    )

    after = server.admin.get("/api/workloads", params={"project": project}).json()
    assert after == workloads_before
    assert audit_rows(server) == audit_before
    assert sorted(p.name for p in base.rglob("*") if p.name.startswith(".moorage")) == (
        listing_before
    )
    assert not (base / "production" / "x").exists()

    # A volume renamed since the snapshot: its data would be left behind, so no clone.
    volumes = server.admin.get(f"/api/workloads/{source.id}/volumes").json()["items"]
    renamed = [{**v, "name": f"{v['name']}-new"} for v in volumes]
    renamed = [{k: v[k] for k in ("name", "scope", "source", "target")} for v in renamed]
    assert server.admin.put(f"/api/workloads/{source.id}/volumes", json=renamed).status_code == 200
    try:
        body = assert_error(clone(source, sid, name="renamed"), 409, "volume_mismatch")
        assert volumes[0]["name"] in body["message"]
        assert not (base / "production" / "renamed").exists()
    finally:
        back = [{k: v[k] for k in ("name", "scope", "source", "target")} for v in volumes]
        assert server.admin.put(f"/api/workloads/{source.id}/volumes", json=back).status_code == 200


def test_operator_clones_and_a_failed_capture_is_not_cloned(server: Server, source: Site) -> None:
    snap = source.snapshot()
    r = clone(source, snap["id"], api=server.operator, name="by-operator")
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["status"] == "never_deployed"
    # Not deployed: no container, but the data is there for the first deploy.
    wait_until(lambda: containers(made["id"]) == [], 5, "no container")
    www = server.data_dir / "volumes" / source.workload["project"] / "production"
    assert (www / "by-operator" / "www" / "index.html").read_text() == "old-www\n"


def test_cli_clone(server: Server, source: Site) -> None:
    snap = source.snapshot()
    ref = f"{source.workload['project']}/production/site"
    done = server.cli(
        "snapshots",
        "clone",
        ref,
        snap["id"],
        "cli-copy",
        "--stage",
        "staging",
        token=server.operator.token,
    )
    assert done.returncode == 0, done.stderr
    assert "into cli-copy" in done.stdout and "stage staging" in done.stdout
    again = server.cli(
        "snapshots",
        "clone",
        ref,
        "latest",
        "cli-copy",
        "--stage",
        "staging",
        token=server.operator.token,
    )
    assert again.returncode == 1 and "already exists" in again.stderr


@pytest.mark.parametrize(
    ("point", "kept"), [("clone.after_extract", False), ("clone.after_commit", True)]
)
def test_a_clone_killed_midway_is_whole_or_absent_after_a_restart(
    tmp_path: Path, point: str, kept: bool
) -> None:
    """SIGKILL after the unpacking (no row yet): the restart drops the staged data and no
    clone exists. SIGKILL after the row committed (data not moved in yet): the restart
    moves the data in and the clone holds the snapshot's bytes. Either way the source is
    untouched and nothing staged is left."""
    proc, fake, common = crash_server(tmp_path, point)
    data = fake.data_dir
    try:
        slug = unique("crash")  # its stage network must be this server's alone
        site = make_source(fake, slug)
        snap = site.snapshot()
        old_www = tree(site.paths["www"])
        write_tree(site.paths["www"], "new-www")
        live = site.trees()
        with pytest.raises(httpx.HTTPError):
            clone(site, snap["id"], name="copy")
        wait_faulted(proc, data)
    finally:
        stop_server(proc)
    proc, url, env = start_server(data, common)
    try:
        api = admin_api(url, env)
        names = {w["name"]: w["id"] for w in api.get("/api/workloads").json()["items"]}
        copy = data / "volumes" / slug / "production" / "copy" / "www"
        if kept:
            assert "copy" in names
            assert tree(copy) == old_www
        else:
            assert "copy" not in names and not copy.exists()
        assert site.trees() == live
        staged = [p for p in (data / "volumes").rglob(".moorage-clone-*")]
        assert staged == [] and not list((data / "clones").glob("cl_*.json"))
    finally:
        stop_server(proc)
