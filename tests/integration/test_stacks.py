"""Compose stacks with Moorage volumes through a real server and the real engine (issue 16,
SPEC section 10): volumes name their service, a capture quiesces every service, a restore
swaps under the restore protocol and brings the whole stack back, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, unique
from tests.integration.helpers import containers, deploy, wait_until
from tests.integration.stacks import Stack, make_stack, tree


@pytest.fixture
def stack(server: Server, project: str) -> Iterator[Stack]:
    made = make_stack(server, project)
    yield made
    made.delete()


def _ticks(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM ticks"))


def test_a_stack_is_captured_changed_and_restored_byte_for_byte(stack: Stack) -> None:
    assert stack.serves() == "old page\n"
    # The writer keeps inserting: the database changes under the capture.
    wait_until(lambda: _ticks(stack) > 5, 60, "the writer's first rows")
    stack.sql("INSERT INTO ticks (note) VALUES ('before-snapshot')")
    extra = stack.pg / "moorage-extra"  # beside PostgreSQL's files: bytes it never touches
    extra.mkdir()
    (extra / "blob.bin").write_bytes(os.urandom(50_000))
    ids_before = {c: stack.container(c) for c in ("web", "db", "writer")}

    snap = stack.capture("stop")
    assert sorted(v["name"] for v in snap["manifest"]["volumes"]) == ["pg", "www"]
    # Every service was stopped for the capture and started again: the same containers.
    assert {c: stack.container(c) for c in ("web", "db", "writer")} == ids_before
    www_at_capture, extra_at_capture = tree(stack.www), tree(extra)
    rows_at_capture = int(stack.sql("SELECT count(*) FROM ticks WHERE note = 'before-snapshot'"))
    assert rows_at_capture == 1

    # Change both volumes: the page, the blob and the database.
    (stack.www / "index.html").write_text("new page\n")
    (stack.www / "only-new").write_text("x")
    (extra / "blob.bin").write_bytes(b"changed")
    stack.sql("INSERT INTO ticks (note) VALUES ('after-snapshot')")
    assert stack.serves() == "new page\n"

    done = stack.restore(snap["id"])
    assert done["status"] == "succeeded", done
    assert tree(stack.www) == www_at_capture
    assert tree(extra) == extra_at_capture
    assert stack.serves() == "old page\n"
    # The database came back consistent at the snapshot's instant: the row written before
    # it is there, the one after it is not, and the writer goes on.
    assert stack.sql("SELECT count(*) FROM ticks WHERE note = 'before-snapshot'") == "1"
    assert stack.sql("SELECT count(*) FROM ticks WHERE note = 'after-snapshot'") == "0"
    after = _ticks(stack)
    wait_until(lambda: _ticks(stack) > after, 60, "the writer after the restore")
    names = containers(stack.id, all_states=False)
    assert len(names) == 3, names


def test_volumes_name_an_existing_service(server: Server, project: str) -> None:
    text = (
        "services:\n"
        "  app:\n"
        "    image: moorage-test/httpd:1\n"
        "    volumes:\n"
        "      - cache:/cache\n"
        "  side:\n"
        "    image: moorage-test/httpd:1\n"
        "    volumes:\n"
        "      - type: volume\n"
        "        source: cache\n"
        "        target: /c\n"
        "volumes:\n"
        "  cache: {}\n"
        "  spare: {}\n"
    )
    wl = create_workload(server, project, kind="compose", config={"compose": text})
    url = f"/api/workloads/{wl['id']}/volumes"
    good = {"name": "data", "scope": "stage", "source": unique("d"), "target": "/data"}
    before = server.operator.get(url).json()
    assert before["items"] == []
    # Named volumes of the file are Docker's, and said to be outside snapshots.
    assert before["not_covered"] == [
        {"name": "cache", "services": ["app", "side"]},
        {"name": "spare", "services": []},
    ]
    cases: list[tuple[dict[str, Any], str, str]] = [
        (good, "unknown_service", "name the Compose service"),
        ({**good, "service": "nope"}, "unknown_service", "'nope'"),
        ({**good, "service": ""}, "unknown_service", "''"),
    ]
    for body, code, said in cases:
        err = assert_error(server.operator.put(url, json=[body]), 422, code)
        assert said in err["message"], err
        assert server.operator.get(url).json() == before
    # The same target twice in one service is refused; in two services it is fine.
    twice = [
        {**good, "service": "app"},
        {**good, "name": "data2", "source": unique("d"), "service": "app"},
    ]
    assert_error(server.operator.put(url, json=twice), 422, "invalid_volume")
    twice[1]["service"] = "side"
    r = server.operator.put(url, json=twice)
    assert r.status_code == 200, r.text
    assert [v["service"] for v in r.json()["items"]] == ["app", "side"]

    # An image workload's volumes name no service.
    image = create_workload(server, project)
    iurl = f"/api/workloads/{image['id']}/volumes"
    err = assert_error(server.operator.put(iurl, json=[{**good, "service": "app"}]), 422)
    assert err["code"] == "invalid_volume" and "service" in err["message"]
    assert server.operator.get(iurl).json() == {"items": [], "not_covered": []}


def test_a_file_that_drops_a_volumes_service_is_refused(
    server: Server, project: str, tmp_path: Path
) -> None:
    """``apps update --file`` without the service a volume binds into was saved, and the
    deploy removed the service's container with the volume unmounted (issue 12): now 422
    ``unknown_service`` naming both, the CLI says it, and nothing changed. Promote and
    rollback: ``tests/unit/services/test_stack_volumes.py``."""
    both = "services:\n  web:\n    image: moorage-test/httpd:1\n  worker:\n    image: x:1\n"
    wl = create_workload(server, project, kind="compose", config={"compose": both})
    url = f"/api/workloads/{wl['id']}"
    data = {"name": "data", "scope": "stage", "source": unique("d"), "target": "/data"}
    r = server.operator.put(f"{url}/volumes", json=[{**data, "service": "worker"}])
    assert r.status_code == 200, r.text
    before = server.operator.get(url).json()
    web = "services:\n  web:\n    image: moorage-test/httpd:1\n"
    err = assert_error(server.operator.patch(url, json={"config": {"compose": web}}), 422)
    assert err["code"] == "unknown_service", err
    assert "'data'" in err["message"] and "'worker'" in err["message"]
    assert err["details"] == [{"field": "service", "volume": "data", "service": "worker"}]
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"compose": web}))
    ref = f"{project}/{wl['stage']}/{wl['name']}"
    out = server.cli("apps", "update", ref, "--file", str(new), token=server.operator.token)
    assert out.returncode != 0 and "'worker'" in out.stdout + out.stderr, out
    assert server.operator.get(url).json() == before


def test_the_override_binds_moorage_volumes_and_a_missing_path_fails(
    server: Server, project: str
) -> None:
    """Moorage's binds are long-syntax ``type: bind`` entries that Docker refuses on a
    missing path, and a user's own bind in the file still needs an admin (issue 12)."""
    stack = make_stack(server, project, writer=False)
    try:
        mounts = subprocess.run(
            ["docker", "inspect", "-f", "{{json .Mounts}}", stack.container("db")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f'"Source":"{stack.pg}"' in mounts and '"Type":"bind"' in mounts
        # Take the volume's directory away: bringing the stack up again fails instead of
        # mounting an empty directory.
        subprocess.run(
            ["docker", "rm", "-f", stack.container("web")], check=True, capture_output=True
        )
        moved = stack.www.with_name("www-moved")
        stack.www.rename(moved)
        r = server.operator.post(f"/api/workloads/{stack.id}/reconcile")
        assert r.status_code in (200, 202), r.text
        assert not stack.www.exists()
        web = subprocess.run(
            [
                "docker",
                "ps",
                "-q",
                "--filter",
                f"label=moorage.workload={stack.id}",
                "--filter",
                "label=com.docker.compose.service=web",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert web == []
        moved.rename(stack.www)
    finally:
        stack.delete()
    bind = (
        "services:\n  app:\n    image: moorage-test/httpd:1\n    volumes:\n      - /etc:/host-etc\n"
    )
    r = server.operator.post(
        "/api/workloads",
        json={
            "name": unique("b"),
            "kind": "compose",
            "project": project,
            "stage": "production",
            "config": {"compose": bind},
        },
    )
    assert_error(r, 403, "needs_admin")


def _drill(stack: Stack, sid: str, check: dict[str, Any] | None) -> dict[str, Any]:
    body = {"check": check} if check is not None else None
    r = stack.api.post(f"/api/workloads/{stack.id}/snapshots/{sid}/drills", json=body)
    assert r.status_code == 202, r.text
    url = f"/api/workloads/{stack.id}/snapshots/{sid}/drills/{r.json()['id']}"
    wait_until(lambda: stack.api.get(url).json()["status"] != "running", 240, "the drill")
    return dict(stack.api.get(url).json())


def _left(drill_id: str) -> list[str]:
    """Containers, networks and named volumes of the drill that still exist."""
    found = []
    for what in (["ps", "-aq"], ["network", "ls", "-q"], ["volume", "ls", "-q"]):
        found += subprocess.run(
            ["docker", *what, "--filter", f"label=moorage.drill={drill_id}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    return found


def test_a_stack_drill_runs_the_snapshot_apart_from_the_live_stack(stack: Stack) -> None:
    """A drill of a stack (SPEC section 10) runs every service of the snapshot as a
    project of its own: the database serves the snapshot's rows, the web service its
    page, the live stack keeps its containers and its new data, nothing is left."""
    wait_until(lambda: _ticks(stack) > 5, 60, "the writer's first rows")
    stack.sql("INSERT INTO ticks (note) VALUES ('in-snapshot')")
    snap = stack.capture("stop")
    (stack.www / "index.html").write_text("new page\n")
    stack.sql("INSERT INTO ticks (note) VALUES ('after-snapshot')")
    ids = {c: stack.container(c) for c in ("web", "db", "writer")}
    live_www = tree(stack.www)

    r = stack.api.post(
        f"/api/workloads/{stack.id}/snapshots/{snap['id']}/drills",
        json={"check": {"exec": ["true"], "service": "nope"}},
    )
    assert_error(r, 422, "unknown_service")
    # The stack's own health rules (every service up, db healthy).
    done = _drill(stack, snap["id"], None)
    assert done["status"] == "passed", (done["error"], done["log"])
    assert _left(done["id"]) == []
    # A check in the db service sees the snapshot's rows, not the later one.
    query = "SELECT note FROM ticks WHERE note IS NOT NULL ORDER BY note"
    done = _drill(
        stack,
        snap["id"],
        {
            "exec": ["psql", "-h", "/run/postgresql", "-U", "postgres", "-Atc", query],
            "service": "db",
        },
    )
    assert done["status"] == "passed", (done["error"], done["log"])
    assert "in-snapshot" in done["log"] and "after-snapshot" not in done["log"], done["log"]
    # An HTTP check runs in the service that publishes a port (web): the old page.
    done = _drill(stack, snap["id"], {"http": "/", "port": 8080})
    assert done["status"] == "passed", (done["error"], done["log"])
    assert "old page" in done["log"]
    assert _left(done["id"]) == []
    after = stack.api.get(f"/api/workloads/{stack.id}/snapshots/{snap['id']}").json()
    assert after["verified_at"] is not None
    # The live stack: the same containers, its new page and row, no published port taken.
    assert {c: stack.container(c) for c in ("web", "db", "writer")} == ids
    assert tree(stack.www) == live_www and stack.serves() == "new page\n"
    assert stack.sql("SELECT count(*) FROM ticks WHERE note = 'after-snapshot'") == "1"


def test_a_volume_path_holding_dollar_signs_binds_that_very_directory(
    server: Server, project: str, tmp_path: Path
) -> None:
    """The helper's reproduction: a stage volume whose source was ``${X:-..}/`` eight
    times over, then a host path, was written into the override as it was, and Compose
    interpolated it into ``../../..``: an operator's container bound the host path read
    and write. A ``$`` in a path is a character of a directory's name."""
    outside = tmp_path / "adminonly"
    outside.mkdir()
    source = "/".join(["${X:-..}"] * 8) + str(outside)
    text = (
        "services:\n  web:\n    image: moorage-test/httpd:1\n"
        "    command: [sh, -c, 'touch /hostdir/written-by-operator; exec httpd -f -p 8080']\n"
    )
    wid = create_workload(server, project, kind="compose", config={"compose": text})["id"]
    try:
        volume = {
            "name": "d",
            "scope": "stage",
            "source": source,
            "target": "/hostdir",
            "service": "web",
        }
        r = server.operator.put(f"/api/workloads/{wid}/volumes", json=[volume])
        assert r.status_code == 200, r.text
        host_path = r.json()["items"][0]["host_path"]
        assert host_path.startswith(str(server.data_dir)) and "${X:-..}" in host_path
        done = deploy(server.operator, wid)
        assert done["status"] == "succeeded", done["log"]
        assert list(outside.iterdir()) == []
        assert (Path(host_path) / "written-by-operator").exists()
    finally:
        server.operator.delete(f"/api/workloads/{wid}")
