"""A web + database Compose stack for the stack tests (issue 16, SPEC section 10).

``web`` is busybox httpd serving its Moorage volume ``www``; ``db`` is Debian's
PostgreSQL (``moorage-test/postgres:1``, built by ``scripts/test-image-postgres.sh``)
on its Moorage volume ``pg``; ``writer`` inserts a row every 50 ms, the realistic case
of a database that changes under a capture. Everything runs through a real server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Api, Server, create_workload, free_port, unique
from tests.integration.helpers import deploy, wait_until

PG_IMAGE = "moorage-test/postgres:1"
STAGE = "production"
PSQL = [
    "psql",
    "-h",
    "/run/postgresql",
    "-U",
    "postgres",
    "-X",
    "-A",
    "-t",
    "-v",
    "ON_ERROR_STOP=1",
]


def stack_text(port: int, *, web_image: str = "moorage-test/httpd:1", writer: bool = True) -> str:
    """web (httpd on a loopback port) + db (PostgreSQL, healthy when it answers) + a writer."""
    text = (
        "services:\n"
        "  web:\n"
        f"    image: {web_image}\n"
        "    init: true\n"
        '    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
        "    ports:\n"
        f'      - "127.0.0.1:{port}:8080"\n'
        "  db:\n"
        f"    image: {PG_IMAGE}\n"
        "    healthcheck:\n"
        '      test: ["CMD", "pg_isready", "-h", "/run/postgresql", "-U", "postgres"]\n'
        "      interval: 1s\n"
        "      retries: 60\n"
    )
    if writer:
        text += (
            "  writer:\n"
            f"    image: {PG_IMAGE}\n"
            "    depends_on: [db]\n"
            '    command: ["sh", "-c", "while :; do psql -h db -U postgres -qc '
            "'INSERT INTO ticks DEFAULT VALUES' >/dev/null 2>&1; sleep 0.05; done\"]\n"
            "    stop_signal: SIGKILL\n"
        )
    return text


def tree(path: Path) -> dict[str, str]:
    """Every entry under ``path``: directories, and files with their SHA-256."""
    out: dict[str, str] = {}
    for directory, dirs, files in os.walk(path):
        rel = os.path.relpath(directory, path)
        for d in dirs:
            out[os.path.join(rel, d)] = "dir"
        for f in files:
            out[os.path.join(rel, f)] = hashlib.sha256(Path(directory, f).read_bytes()).hexdigest()
    return out


@dataclass
class Stack:
    server: Server
    api: Api
    workload: dict[str, Any]
    port: int
    www: Path
    pg: Path

    @property
    def id(self) -> str:
        return str(self.workload["id"])

    def container(self, service: str) -> str:
        out = subprocess.run(
            [
                "docker",
                "ps",
                "-q",
                "--filter",
                f"label=moorage.workload={self.id}",
                "--filter",
                f"label=com.docker.compose.service={service}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(out) == 1, f"{service}: {out}"
        return out[0]

    def sql(self, query: str) -> str:
        deadline = time.monotonic() + 60
        while True:
            r = subprocess.run(
                ["docker", "exec", self.container("db"), *PSQL, "-c", query],
                capture_output=True,
                text=True,
            )
            if r.returncode == 0:
                return r.stdout.strip()
            assert time.monotonic() < deadline, r.stderr
            time.sleep(0.5)

    def serves(self) -> str:
        deadline = time.monotonic() + 30
        while True:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/", timeout=2).text
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the web service does not answer"
                time.sleep(0.3)

    def capture(self, mode: str = "stop", expect: str = "ready") -> dict[str, Any]:
        r = self.api.post(f"/api/workloads/{self.id}/snapshots", json={"mode": mode})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        url = f"/api/workloads/{self.id}/snapshots/{sid}"
        wait_until(lambda: self.api.get(url).json()["status"] != "capturing", 180, "the capture")
        snap = dict(self.api.get(url).json())
        assert snap["status"] == expect, snap
        return snap

    def restore(self, sid: str) -> dict[str, Any]:
        admin = self.server.admin
        r = admin.post(
            f"/api/workloads/{self.id}/snapshots/{sid}/restore",
            headers={"X-Confirm-Restore": self.workload["name"]},
        )
        assert r.status_code == 202, r.text
        url = f"/api/workloads/{self.id}/restores/{r.json()['id']}"
        wait_until(lambda: admin.get(url).json()["status"] != "running", 240, "the restore")
        return dict(admin.get(url).json())

    def delete(self) -> None:
        self.server.admin.delete(
            f"/api/workloads/{self.id}",
            params={"purge_snapshots": "true", "purge_volumes": "true"},
        )


def make_stack(server: Server, project: str, *, writer: bool = True) -> Stack:
    """The stack created and its volumes set by an operator, deployed, with a ``ticks``
    table and a page; answers once the database takes writes."""
    port = free_port()
    name = unique("stack")
    workload = create_workload(
        server,
        project,
        name=name,
        kind="compose",
        config={"compose": stack_text(port, writer=writer)},
    )
    wid = workload["id"]
    r = server.operator.put(
        f"/api/workloads/{wid}/volumes",
        json=[
            {
                "name": "www",
                "scope": "stage",
                "source": f"{name}/www",
                "target": "/www",
                "service": "web",
            },
            {
                "name": "pg",
                "scope": "stage",
                "source": f"{name}/pg",
                "target": "/var/lib/postgresql/data",
                "service": "db",
            },
        ],
    )
    assert r.status_code == 200, r.text
    base = server.data_dir / "volumes" / project / STAGE / name
    www, pg = base / "www", base / "pg"
    www.mkdir(parents=True)
    (www / "index.html").write_text("old page\n")
    (www / "blob.bin").write_bytes(os.urandom(100_000))
    done = deploy(server.operator, wid, timeout=240)
    assert done["status"] == "succeeded", done["log"]
    stack = Stack(server, server.operator, workload, port, www, pg)
    stack.sql(
        "CREATE TABLE IF NOT EXISTS ticks "
        "(id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), note text)"
    )
    return stack
