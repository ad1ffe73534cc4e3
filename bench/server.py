"""Start a throwaway Moorage server for a benchmark and hand back an admin client."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

MOORAGE = str(Path(sys.executable).parent / "moorage")


@contextmanager
def running_server(
    data_dir: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[httpx.Client, int]]:
    """Yield (admin client, server pid). ``data_dir`` is its MOORAGE_DATA_DIR, for a
    benchmark that works on the server's files; a throwaway directory by default. ``env``
    adds MOORAGE_* variables (no proxy unless it asks for one)."""
    extra = env or {}
    with tempfile.TemporaryDirectory(prefix="moorage-bench-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
        env.update(
            MOORAGE_PROXY="none",
            MOORAGE_DATA_DIR=str(data_dir or Path(tmp) / "var"),
            MOORAGE_BIND=f"127.0.0.1:{port}",
            MOORAGE_ADMIN_PASSWORD="bench-password",  # noqa: S106 (a throwaway server)
            MOORAGE_CONTAINER_LABELS=f"moorage.bench={port}",
        )
        env.update(extra)
        proc = subprocess.Popen(
            [MOORAGE, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(f"{url}/api/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            token = subprocess.run(
                [MOORAGE, "token", "create", "--username", "admin"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client:
                yield client, proc.pid
        finally:
            # A server with deploys running may take longer than this to stop; killed
            # then, and its containers removed all the same (a TimeoutExpired here once
            # hid the benchmark's own error and left 37 restarting containers behind).
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _remove_labelled(f"moorage.bench={port}")


def image_workload(client: httpx.Client, name: str, config: dict[str, Any]) -> str:
    """The id of a new image workload ``name`` of ``config`` in project ``bench`` (which
    the caller made), stage ``production``; raises ``httpx.HTTPStatusError`` when the
    server refuses it."""
    body = {"name": name, "kind": "image", "project": "bench", "stage": "production"}
    r = client.post("/api/workloads", json={**body, "config": config}).raise_for_status()
    return str(r.json()["id"])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _remove_labelled(label: str) -> None:
    """Remove the containers and networks the benchmark's server created."""
    for kind in ("container", "network"):
        listing = (
            ["docker", "ps", "-aq"] if kind == "container" else ["docker", "network", "ls", "-q"]
        )
        ids = subprocess.run(
            [*listing, "--filter", f"label={label}"], capture_output=True, text=True
        ).stdout.split()
        if ids:
            remove = ["docker", "rm", "-f"] if kind == "container" else ["docker", "network", "rm"]
            subprocess.run([*remove, *ids], capture_output=True)
