"""Recovery points (SPEC section 10) through real server processes on the real engine: a
stage of three workloads captured at one instant and restored together; a pre-flight
refusal on one of them leaves all three running and untouched; SIGKILL after each part
of the restore recovers every workload to all old or all new; bad input and roles."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    Api,
    Server,
    admin_api,
    again,
    assert_error,
    free_port,
    start_server,
    stop_server,
    unique,
    wait_faulted,
)
from tests.integration.helpers import get_text, wait_deployment, wait_until
from tests.integration.test_restore import tree, write_tree

NAMES = ("alpha", "beta", "gamma")


@dataclass
class Stage:
    api: Api
    project: str
    ids: dict[str, str]  # name -> workload id
    ports: dict[str, int]
    paths: dict[str, Path]

    def trees(self) -> dict[str, dict[str, str]]:
        return {n: tree(p) for n, p in self.paths.items()}

    def containers(self) -> dict[str, list[str]]:
        return {name: self.containers_of(wid) for name, wid in self.ids.items()}

    @staticmethod
    def containers_of(workload_id: str) -> list[str]:
        """The ids of the workload's running containers."""
        found = subprocess.run(
            [
                "docker",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                f"label=moorage.workload={workload_id}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(found.split())

    def point(self, mode: str = "stop") -> dict[str, Any]:
        r = self.api.post(
            f"/api/projects/{self.project}/recovery-points",
            json={"stage": "production", "mode": mode},
        )
        assert r.status_code == 202, r.text
        url = f"/api/projects/{self.project}/recovery-points/{r.json()['id']}"
        wait_until(lambda: self.api.get(url).json()["status"] != "capturing", 120, "the capture")
        point = dict(self.api.get(url).json())
        assert point["status"] == "ready", point
        return point

    def restore(self, rpid: str, confirm: str | None = None) -> httpx.Response:
        return self.api.post(
            f"/api/projects/{self.project}/recovery-points/{rpid}/restore",
            headers={"X-Confirm-Restore": confirm or f"{self.project}/production"},
        )

    def wait_restore(self, rpid: str) -> dict[str, Any]:
        url = f"/api/projects/{self.project}/recovery-points/{rpid}"
        wait_until(
            lambda: self.api.get(url).json()["restore_status"] != "running", 180, "the restore"
        )
        return dict(self.api.get(url).json())


def make_stage(api: Api, data_dir: Path, project: str) -> Stage:
    assert api.post("/api/projects", json={"slug": project}).status_code == 201
    ids, ports, paths = {}, {}, {}
    for name in NAMES:
        port = free_port()
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
                    "health": {"http": "/", "timeout_seconds": 30},
                },
            },
        )
        assert r.status_code == 201, r.text
        wid = r.json()["id"]
        vol = [{"name": "www", "scope": "stage", "source": f"{name}/www", "target": "/www"}]
        assert api.put(f"/api/workloads/{wid}/volumes", json=vol).status_code == 200
        path = data_dir / "volumes" / project / "production" / name / "www"
        write_tree(path, f"old-{name}")
        d = api.post(f"/api/workloads/{wid}/deploy").json()
        assert wait_deployment(api, wid, d["id"])["status"] == "succeeded"
        ids[name], ports[name], paths[name] = wid, port, path
    return Stage(api, project, ids, ports, paths)


@pytest.fixture
def stage(server: Server) -> Iterator[Stage]:
    made = make_stage(server.admin, server.data_dir, unique("rp"))
    yield made
    for wid in made.ids.values():
        server.admin.delete(f"/api/workloads/{wid}", params={"purge_snapshots": "true"})


def test_a_stage_restores_to_one_instant(server: Server, stage: Stage) -> None:
    point = stage.point()
    assert {i["name"] for i in point["items"]} == set(NAMES)
    for item in point["items"]:
        snap = stage.api.get(
            f"/api/workloads/{item['workload_id']}/snapshots/{item['snapshot_id']}"
        )
        assert snap.json()["origin"] == "recovery-point" and snap.json()["mode"] == "stop"
    at_point = stage.trees()
    for name, p in stage.paths.items():
        write_tree(p, f"new-{name}")
    assert stage.trees() != at_point
    r = stage.restore(point["id"])
    assert r.status_code == 202, r.text
    assert r.json()["restore_status"] == "running"
    done = stage.wait_restore(point["id"])
    assert done["restore_status"] == "succeeded", done
    assert stage.trees() == at_point
    for name in NAMES:
        text = httpx.get(f"http://127.0.0.1:{stage.ports[name]}/index.html", timeout=10).text
        assert text == f"old-{name}\n"
    listed = stage.api.get(f"/api/projects/{stage.project}/recovery-points").json()["items"]
    assert [p["id"] for p in listed] == [point["id"]]


@pytest.mark.parametrize("mode", ["stop", "pause"])
def test_hooks_run_while_the_stage_runs_and_it_is_captured_still(stage: Stage, mode: str) -> None:
    """A workload's ``before`` hook runs in its running container before the stage is
    quiesced (all at once), and its ``after`` once the stage runs again; what the
    ``before`` wrote is in the point. Once every workload was stopped first, and every
    ``before`` failed with "no running container"."""
    hooked = stage.ids["beta"]
    stamp = unique("dumped")
    hooks = {
        "before": {"command": ["sh", "-c", f"echo {stamp} > /www/dump.txt"]},
        "after": {"command": ["sh", "-c", "echo after > /www/after.txt"]},
        "timeout_s": 30,
    }
    r = stage.api.put(f"/api/workloads/{hooked}/snapshot-hooks", json=hooks)
    assert r.status_code == 200, r.text
    point = stage.point(mode=mode)
    item = next(i for i in point["items"] if i["workload_id"] == hooked)
    snap = stage.api.get(f"/api/workloads/{hooked}/snapshots/{item['snapshot_id']}").json()
    assert snap["status"] == "ready", snap
    assert "before hook exited 0" in snap["log"] and "after hook exited 0" in snap["log"]
    assert snap["warnings"] == []
    assert (stage.paths["beta"] / "dump.txt").read_text() == f"{stamp}\n"
    assert (stage.paths["beta"] / "after.txt").exists()
    assert all(len(found) == 1 for found in stage.containers().values())  # all run again
    (stage.paths["beta"] / "dump.txt").write_text("changed\n")
    r = stage.restore(point["id"])
    assert r.status_code == 202, r.text
    assert stage.wait_restore(point["id"])["restore_status"] == "succeeded"
    assert (stage.paths["beta"] / "dump.txt").read_text() == f"{stamp}\n"


def test_a_failing_before_hook_fails_its_part_and_resumes_all(stage: Stage) -> None:
    hooked = stage.ids["gamma"]
    hooks = {"before": {"command": ["sh", "-c", "exit 7"]}, "timeout_s": 30}
    r = stage.api.put(f"/api/workloads/{hooked}/snapshot-hooks", json=hooks)
    assert r.status_code == 200, r.text
    r = stage.api.post(
        f"/api/projects/{stage.project}/recovery-points",
        json={"stage": "production", "mode": "stop"},
    )
    assert r.status_code == 202, r.text
    url = f"/api/projects/{stage.project}/recovery-points/{r.json()['id']}"
    wait_until(lambda: stage.api.get(url).json()["status"] != "capturing", 120, "the capture")
    point = stage.api.get(url).json()
    assert point["status"] != "ready", point
    item = next(i for i in point["items"] if i["workload_id"] == hooked)
    snap = stage.api.get(f"/api/workloads/{hooked}/snapshots/{item['snapshot_id']}").json()
    assert snap["status"] == "failed" and "before hook exited 7" in snap["error"], snap
    assert all(len(found) == 1 for found in stage.containers().values())  # all run again


def test_a_pre_flight_refusal_on_the_third_touches_none(server: Server, stage: Stage) -> None:
    point = stage.point()
    third = point["items"][-1]
    vol = [{"name": "other", "scope": "stage", "source": f"{third['name']}/other", "target": "/o"}]
    r = stage.api.put(f"/api/workloads/{third['workload_id']}/volumes", json=vol)
    assert r.status_code == 200, r.text
    for name, p in stage.paths.items():
        write_tree(p, f"new-{name}")
    before, running = stage.trees(), stage.containers()
    assert all(running.values())
    err = assert_error(stage.restore(point["id"]), 409, "volume_mismatch")
    assert third["name"] in err["message"]
    assert stage.trees() == before and stage.containers() == running
    for wid in stage.ids.values():
        assert stage.api.get(f"/api/workloads/{wid}/restores").json()["items"] == []
    again = stage.api.get(f"/api/projects/{stage.project}/recovery-points/{point['id']}").json()
    assert again["restore_status"] == "" and again["restores"] == []
    # And it can be asked again once the third is fixed: nothing was left accepted.
    vol = [{"name": "www", "scope": "stage", "source": f"{third['name']}/www", "target": "/www"}]
    assert (
        stage.api.put(f"/api/workloads/{third['workload_id']}/volumes", json=vol).status_code == 200
    )
    assert stage.restore(point["id"]).status_code == 202
    assert stage.wait_restore(point["id"])["restore_status"] == "succeeded"


def test_recovery_point_refusals(server: Server, stage: Stage) -> None:
    url = f"/api/projects/{stage.project}/recovery-points"
    assert_error(server.admin.post(url, json={"stage": "nowhere"}), 422, "unknown_stage")
    assert_error(
        server.admin.post(url, json={"stage": "production", "mode": "x"}), 422, "invalid_mode"
    )
    assert_error(server.admin.post(url, json={"stage": "staging"}), 422, "invalid_input")
    assert_error(server.admin.post(url, json={"mode": "stop"}), 422, "invalid_request")
    assert_error(server.admin.post("/api/projects/nope/recovery-points", json={"stage": "x"}), 404)
    assert_error(server.viewer.post(url, json={"stage": "production"}), 403, "forbidden")
    assert server.admin.get(url).json()["items"] == []
    point = stage.point(mode="pause")
    for name in NAMES:
        write_tree(stage.paths[name], f"new-{name}")
    before = stage.trees()
    assert_error(stage.restore(point["id"], confirm="wrong/stage"), 428, "confirmation_required")
    r = server.operator.post(
        f"{url}/{point['id']}/restore",
        headers={"X-Confirm-Restore": f"{stage.project}/production"},
    )
    assert_error(r, 403, "forbidden")
    assert_error(stage.restore("rp_missing"), 404)
    assert stage.trees() == before


FAULTS = [0, 1, 2]


@pytest.mark.parametrize("n", FAULTS, ids=[f"recovery_point.after_restore.{n}" for n in FAULTS])
def test_killed_after_each_part_recovers_all_old_or_all_new(tmp_path: Path, n: int) -> None:
    data = tmp_path / "var"
    fault = f"recovery_point.after_restore.{n}"
    armed = {"MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": fault}
    proc, url, env = start_server(data, armed)
    try:
        slug = unique("crash")  # its stage network must be this server's alone
        stage = make_stage(admin_api(url, env), data, slug)
        point = stage.point()
        order = [i["name"] for i in point["items"]]
        at_point = stage.trees()
        for name, p in stage.paths.items():
            write_tree(p, f"new-{name}")
        live = stage.trees()
        assert stage.restore(point["id"]).status_code == 202
        wait_faulted(proc, data)
    finally:
        stop_server(proc)
    proc, url, env = start_server(data, {})
    try:
        stage.api = again(stage.api, url)
        row = stage.api.get(f"/api/projects/{slug}/recovery-points/{point['id']}").json()
        trees = stage.trees()
        for position, name in enumerate(order):
            expect = at_point[name] if position <= n else live[name]
            assert trees[name] == expect, f"{name} is neither all old nor all new as expected"
        if n == len(order) - 1:
            assert row["restore_status"] == "succeeded", row
        else:
            assert row["restore_status"] == "failed", row
            assert "stopped during the restore" in row["restore_error"]
        for position, name in enumerate(order):
            served = get_text(stage.ports[name], "/index.html", timeout=60)
            assert served == (f"old-{name}\n" if position <= n else f"new-{name}\n")
    finally:
        stop_server(proc)


def test_cli_create_list_restore(server: Server, stage: Stage) -> None:
    ref = f"{stage.project}/production"
    made = server.cli("recovery-points", "create", ref, token=server.operator.token)
    assert made.returncode == 0, made.stderr
    assert "ready: " in made.stdout
    at_point = stage.trees()
    listed = server.cli("recovery-points", "list", ref, "--json", token=server.viewer.token)
    assert listed.returncode == 0, listed.stderr
    rpid = json.loads(listed.stdout)[0]["id"]
    for name, p in stage.paths.items():
        write_tree(p, f"new-{name}")
    refused = server.cli(
        "recovery-points", "restore", ref, rpid, "--confirm", "x/y", token=server.admin.token
    )
    assert refused.returncode == 1 and "--confirm" in refused.stderr
    done = server.cli(
        "recovery-points", "restore", ref, rpid, "--confirm", ref, token=server.admin.token
    )
    assert done.returncode == 0, done.stderr
    assert stage.trees() == at_point


def test_a_stateless_workload_is_skipped_and_named(server: Server, stage: Stage) -> None:
    """A workload without volumes has nothing a point could miss: the point holds the
    others, names it under ``skipped`` (API and CLI), and a restore leaves it running."""
    r = stage.api.post(
        "/api/workloads",
        json={
            "name": "portuse",
            "kind": "image",
            "project": stage.project,
            "stage": "production",
            "config": {"image": "moorage-test/httpd:1", "health": {"grace_seconds": 0}},
        },
    )
    assert r.status_code == 201, r.text
    stateless = r.json()["id"]
    try:
        d = stage.api.post(f"/api/workloads/{stateless}/deploy").json()
        assert wait_deployment(stage.api, stateless, d["id"])["status"] == "succeeded"
        running = stage.containers_of(stateless)
        started = started_at(running)
        ref = f"{stage.project}/production"
        made = server.cli("recovery-points", "create", ref, token=server.operator.token)
        assert made.returncode == 0, made.stderr
        assert "skipped portuse: the workload has no volumes to snapshot" in made.stdout
        assert "ready: " in made.stdout
        listed = stage.api.get(f"/api/projects/{stage.project}/recovery-points").json()["items"]
        [point] = listed
        assert {i["name"] for i in point["items"]} == set(NAMES)
        assert [(k["workload_id"], k["name"]) for k in point["skipped"]] == [(stateless, "portuse")]
        at_point = stage.trees()
        for name, p in stage.paths.items():
            write_tree(p, f"new-{name}")
        done = server.cli(
            "recovery-points",
            "restore",
            ref,
            point["id"],
            "--confirm",
            ref,
            token=server.admin.token,
        )
        assert done.returncode == 0, done.stderr
        assert stage.trees() == at_point
        assert stage.containers_of(stateless) == running  # not replaced
        assert started_at(running) == started  # nor stopped and started again
    finally:
        server.admin.delete(f"/api/workloads/{stateless}")


def started_at(containers: list[str]) -> list[str]:
    """When each container last started (a stop and start changes it; the id stays)."""
    found = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", *containers],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return found.split()
