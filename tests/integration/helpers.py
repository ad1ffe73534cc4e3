"""Helpers for tests against the real Docker engine: deploy and wait, reach a loopback port."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Api, Server, admin_api, start_server

TERMINAL = {"succeeded", "failed", "interrupted"}


def wait_deployment(
    api: Api, workload_id: str, deployment_id: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"/api/workloads/{workload_id}/deployments/{deployment_id}")
        assert r.status_code == 200, r.text
        body = dict(r.json())
        if body["status"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"deployment still {body['status']}: {body['log']}"
        time.sleep(0.2)


def deploy(api: Api, workload_id: str, timeout: float = 120) -> dict[str, Any]:
    """Queue a deploy and wait for it to end; return the finished deployment."""
    r = api.post(f"/api/workloads/{workload_id}/deploy")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    return wait_deployment(api, workload_id, r.json()["id"], timeout)


def get_text(port: int, path: str = "/", timeout: float = 10) -> str:
    """GET a published loopback port, retrying while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
            return r.text
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def containers(workload_id: str, *, all_states: bool = True) -> list[str]:
    """Names of the workload's containers as Docker itself lists them."""
    args = [
        "docker",
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        f"label=moorage.workload={workload_id}",
    ]
    if all_states:
        args.insert(2, "-a")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


def image_of(container: str) -> str:
    """The image id a container runs, as Docker itself reports it."""
    args = ["docker", "inspect", "--format", "{{.Image}}", container]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def image_id(ref: str) -> str:
    args = ["docker", "image", "inspect", "--format", "{{.Id}}", ref]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def crash_server(
    tmp_path: Path, point: str
) -> tuple[subprocess.Popen[str], Server, dict[str, str]]:
    """For a crash test: a server on a data dir of its own armed to SIGKILL itself at fault
    point ``point`` (every API identity is its admin), and the env a restart of it takes."""
    data, root = tmp_path / "var", tmp_path / "roots"
    root.mkdir()
    common = {"MOORAGE_VOLUME_ROOTS": str(root)}
    armed = {**common, "MOORAGE_ENABLE_FAULTPOINTS": "1", "MOORAGE_FAULTPOINT": point}
    proc, url, env = start_server(data, armed)
    api = admin_api(url, env)
    return proc, Server(url, data, root, env, api, api, api, Api(url)), common
