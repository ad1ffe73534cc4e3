"""A redeploy on a fixed host port health-checks the new container before it takes the
port: a client polling the published port during a failing redeploy only ever sees the
old version, and the old container is never stopped."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import httpx

from tests.conftest import Server, create_workload, free_port
from tests.integration.helpers import containers, deploy, get_text


class Poller:
    """GETs the published port in a loop and counts every answer (and every failure)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                try:
                    self.seen[client.get(f"http://127.0.0.1:{self.port}/").text] += 1
                except httpx.HTTPError as exc:
                    self.seen[f"error: {type(exc).__name__}"] += 1
                time.sleep(0.02)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(10)


def started_at(container: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    ).stdout
    state = json.loads(out)[0]["State"]
    assert state["Running"] is True, state
    return str(state["StartedAt"])


def serving_v1(server: Server, project: str, *, volume: bool = False) -> tuple[str, int]:
    """An image workload on a fixed loopback port, deployed: v1 answers there."""
    port = free_port()
    config = {
        "image": "moorage-test/httpd:1",
        "ports": [{"container": 8080, "host": port}],
        "health": {"http": "/", "timeout_seconds": 20},
    }
    wid = str(create_workload(server, project, config=config)["id"])
    if volume:
        data = {"name": "data", "scope": "stage", "source": f"{wid}/data", "target": "/data"}
        r = server.operator.put(f"/api/workloads/{wid}/volumes", json=[data])
        assert r.status_code == 200, r.text
    first = deploy(server.operator, wid)
    assert first["status"] == "succeeded", first["log"]
    assert get_text(port) == "hello from v1\n"
    return wid, port


def test_a_failing_redeploy_never_answers_on_the_published_port(
    server: Server, project: str
) -> None:
    wid, port = serving_v1(server, project)
    try:
        (old,) = containers(wid)
        old_start = started_at(old)

        # v2 serves "/" but its health check asks for a page it lacks: it never passes.
        failing = {
            "image": "moorage-test/httpd:2",
            "health": {"http": "/missing", "timeout_seconds": 4},
        }
        r = server.operator.patch(f"/api/workloads/{wid}", json={"config": failing})
        assert r.status_code == 200, r.text
        with Poller(port) as poller:
            failed = deploy(server.operator, wid)
        # Every answer during the whole failing deploy came from the old version.
        assert set(poller.seen) == {"hello from v1\n"}, poller.seen
        assert poller.seen["hello from v1\n"] > 20, poller.seen
        assert failed["status"] == "failed", failed["log"]
        assert "404" in failed["error"], failed["error"]
        assert "candidate" in failed["log"]
        assert "stopped" not in failed["log"]
        # The old container was never stopped (same start), and it is the only one left.
        assert containers(wid) == [old]
        assert started_at(old) == old_start
        assert get_text(port) == "hello from v1\n"
        assert server.viewer.get(f"/api/workloads/{wid}").json()["status"] == "running"

        # A passing redeploy takes the port over: the poller sees v1, then v2.
        passing = {"image": "moorage-test/httpd:2", "health": {"http": "/", "timeout_seconds": 20}}
        r = server.operator.patch(f"/api/workloads/{wid}", json={"config": passing})
        assert r.status_code == 200, r.text
        with Poller(port) as poller:
            done = deploy(server.operator, wid)
        assert done["status"] == "succeeded", done["log"]
        assert "the candidate passed" in done["log"]
        assert get_text(port) == "hello from v2\n"
        answers = {k for k in poller.seen if not k.startswith("error")}
        assert answers <= {"hello from v1\n", "hello from v2\n"}, poller.seen
        (new,) = containers(wid)
        assert new != old and not new.endswith("_candidate")
    finally:
        server.admin.delete(f"/api/workloads/{wid}")


def test_a_container_failing_after_its_candidate_passed_gives_the_port_back(
    server: Server, project: str
) -> None:
    wid, port = serving_v1(server, project, volume=True)
    try:
        (old,) = containers(wid)
        # Serves the first time it starts (the candidate), exits 4 every time after.
        once = (
            "if [ -e /data/ran ]; then exit 4; fi; touch /data/ran; exec httpd -f -p 8080 -h /www"
        )
        r = server.operator.patch(
            f"/api/workloads/{wid}",
            json={"config": {"image": "moorage-test/httpd:2", "command": ["sh", "-c", once]}},
        )
        assert r.status_code == 200, r.text
        with Poller(port) as poller:
            failed = deploy(server.operator, wid)
        assert {k for k in poller.seen if not k.startswith("error")} == {"hello from v1\n"}
        assert failed["status"] == "failed", failed["log"]
        assert "exit code 4" in failed["error"], failed["error"]
        assert "the candidate passed" in failed["log"]
        assert f"started the previous container {old} again" in failed["log"]
        assert containers(wid) == [old]
        assert get_text(port) == "hello from v1\n"
    finally:
        server.admin.delete(f"/api/workloads/{wid}")
