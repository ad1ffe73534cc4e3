"""A Compose file's cost is refused before anything parses it: a 1 KB "billion laughs"
file is a quick 422, alone or many at once, and the server's memory stays where it was.

Before issue 12 such a file kept the validator at ~770 MiB of RSS and a full CPU for 60 s.
The server here is this module's own, so its memory is not shared with other tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Api, admin_api, assert_error, start_server, stop_server, unique
from tests.unit.sources.compose.test_file import laughs

# The module's own server is made once per worker that runs one of its tests: one worker.
pytestmark = pytest.mark.xdist_group("compose_cost")

MIB = 1024 * 1024


@dataclass
class Own:
    pid: int
    admin: Api
    project: str

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    base = tmp_path_factory.mktemp("cost")
    proc, url, env = start_server(base / "var")
    try:
        admin = admin_api(url, env)
        project = unique("p")
        assert admin.post("/api/projects", json={"slug": project}).status_code == 201
        yield Own(proc.pid, admin, project)
    finally:
        stop_server(proc)


def create(own: Own, text: str) -> tuple[int, str, float]:
    started = time.monotonic()
    r = own.admin.post(
        "/api/workloads",
        json={
            "name": unique("bomb"),
            "kind": "compose",
            "project": own.project,
            "stage": "production",
            "config": {"compose": text},
        },
    )
    return r.status_code, r.text, time.monotonic() - started


def test_a_billion_laughs_is_a_quick_422_with_bounded_memory(own: Own) -> None:
    text = laughs()
    assert len(text.encode()) < 1200
    own.admin.get("/api/workloads")  # warm up the paths a request takes
    before = own.rss()

    status, answer, elapsed = create(own, text)
    assert status == 422, answer
    assert elapsed < 5
    error = json.loads(answer)["error"]
    assert error["code"] == "invalid_config"
    assert "aliases expand" in error["message"], error

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _i: create(own, text), range(32)))
    assert [status for status, _, _ in answers] == [422] * 32, answers[0][1]
    assert max(elapsed for _, _, elapsed in answers) < 10
    assert own.rss() - before < 100 * MIB, (before / MIB, own.rss() / MIB)
    listed = own.admin.get("/api/workloads", params={"project": own.project}).json()
    assert listed["items"] == []


def test_a_patch_to_a_billion_laughs_is_refused_and_changes_nothing(own: Own) -> None:
    status, body, _ = create(own, "services:\n  web:\n    image: moorage-test/httpd:1\n")
    assert status == 201, body
    workload = json.loads(body)
    r = own.admin.patch(f"/api/workloads/{workload['id']}", json={"config": {"compose": laughs()}})
    assert_error(r, 422, "invalid_config")
    shown = own.admin.get(f"/api/workloads/{workload['id']}").json()
    assert shown["config"] == workload["config"]
