"""Restore downtime at 1 MiB and at a large size, and the naive stop / delete / untar / start.

Budget (SPEC section 8): downtime at 1 GiB <= 1.1 x downtime at 1 MiB. Downtime is
what a client sees: a background thread asks the workload's published loopback
port for ``/`` every 10 ms, and the outage runs from the first probe that fails
to the first one that succeeds again. Verification and extraction happen while
the workload still serves, so only the swap window should show up. Each size
runs ``ROUNDS`` restores of the same snapshot (alternating sizes); the median
counts. For comparison, a plain script does the naive sequence on a plain
container with the same image and the same bytes: ``docker stop``, ``rm -rf``
the volume, ``zstd -dc archive | tar -x`` into it, ``docker start``, wait serving.
Beside each downtime, docker's own event log gives the time from the container's
``die`` to its next ``start`` event (sent once the container runs): the stopped window
itself, without the wait for the app inside to answer. A bare ``docker stop`` +
``docker start`` of the plain container is printed as the floor any restore that
stops the container pays.
``MOORAGE_BENCH_RESTORE_MIB`` sizes the large case (default 1024). Nothing here
asserts a budget; the numbers are for people.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.server import image_workload, running_server
from tests.conftest import free_port

MIB = 1 << 20
KIB = 1 << 10
ROUNDS = 5
FLOOR_TARGET = 1.2
TARGET = 1.1
IMAGE = "moorage-test/httpd:1"
PROBE_EVERY = 0.01
PLAIN_LABEL = "moorage.bench=restore-plain"


# --- the probe ----------------------------------------------------------------


def serves(port: int) -> bool:
    """One HTTP/1.0 GET of ``/`` on a fresh connection: True on a 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.settimeout(1)
            conn.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            head = conn.recv(64).split()
            return len(head) >= 2 and head[0].startswith(b"HTTP/") and head[1] == b"200"
    except OSError:
        return False


class Outages:
    """Probes a port every 10 ms from a background thread and records when it fails."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.probes: list[tuple[float, bool]] = []  # (start time, answered 200)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="probe", daemon=True)

    def __enter__(self) -> Outages:
        self._thread.start()
        self.wait(lambda: any(ok for _, ok in self.probes), "the app to serve before the run")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        tick = time.perf_counter()
        while not self._stop.is_set():
            started = time.perf_counter()
            self.probes.append((started, serves(self.port)))
            tick = max(tick + PROBE_EVERY, time.perf_counter())
            self._stop.wait(max(0.0, tick - time.perf_counter()))

    def wait(self, predicate: Any, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def gaps(self) -> list[float]:
        """Each outage: first failed probe to the first probe that answers again."""
        found, began = [], None
        for at, ok in list(self.probes):
            if not ok and began is None:
                began = at
            elif ok and began is not None:
                found.append(at - began)
                began = None
        return found

    def recovered(self) -> bool:
        """An outage happened and the app answers again."""
        probes = list(self.probes)
        return any(not ok for _, ok in probes) and probes[-1][1]


@dataclass(frozen=True)
class Round:
    downtime: float  # what the probe saw: first failed answer to the first good one
    stopped: float  # docker's own events: the container died -> it started again
    took: float = 0.0  # the whole restore, request to "succeeded"


def stopped_for(selector: str, since: float, until: float) -> float:
    """From docker's event log: the first ``die`` of the container(s) to the next ``start``."""
    out = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.6f}",
            "--until",
            f"{until:.6f}",
            "--filter",
            selector,
            "--format",
            "{{.TimeNano}} {{.Action}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    died = None
    for line in out.splitlines():
        nanos, action = line.split(" ", 1)
        if action == "die" and died is None:
            died = int(nanos) / 1e9
        elif action == "start" and died is not None:
            return int(nanos) / 1e9 - died
    raise RuntimeError(f"no die -> start in docker's events for {selector}: {out!r}")


# --- data ---------------------------------------------------------------------


def fill(directory: Path, total: int) -> int:
    """Write ``total`` random bytes into ``directory``: files of up to 4 MiB, and a few
    small ones and an empty directory. Answer the number of files."""
    directory.mkdir(parents=True, exist_ok=True)
    size = max(64 * KIB, min(4 * MIB, total // 16))
    written = files = 0
    while written < total:
        n = min(size, total - written)
        sub = directory / f"d{files % 8}"
        sub.mkdir(exist_ok=True)
        with open(sub / f"blob-{files:05d}.bin", "wb") as out:
            left = n
            while left:
                chunk = min(left, MIB)
                out.write(os.urandom(chunk))
                left -= chunk
        written += n
        files += 1
    (directory / "empty").mkdir(exist_ok=True)
    # What real volumes hold beside plain files (SPEC section 5): symlinks, hard links,
    # a sparse image, a fifo, and names that are not plain UTF-8.
    odd = directory / "odd"
    odd.mkdir(exist_ok=True)
    for i in range(20):
        (odd / f"v{i}.pem").write_bytes(os.urandom(1500))
        os.symlink(f"v{i}.pem", odd / f"latest-{i}.pem")
        os.link(odd / f"v{i}.pem", odd / f"hard-{i}.pem")
    for name in (b"report\\2025.txt", b"two\nlines", b"caf\xe9"):
        (odd / os.fsdecode(name)).write_bytes(name)
    with open(odd / "vm.img", "wb") as image:
        image.truncate(256 * MIB)
        image.seek(100 * MIB)
        image.write(b"page")
    os.mkfifo(odd / "pipe")
    return files + 23


# --- Moorage ------------------------------------------------------------------


def _wait(client: httpx.Client, path: str, done: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(path).raise_for_status().json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting on {path}: {body}")
        time.sleep(0.1)


class Case:
    """One image workload with one stage volume of ``size`` bytes, and its snapshot."""

    def __init__(self, client: httpx.Client, name: str, size: int) -> None:
        self.client, self.name, self.size = client, name, size
        self.port = free_port()
        config = {
            "image": IMAGE,
            "ports": [{"container": 8080, "host": self.port}],
            "health": {"http": "/", "interval_seconds": 0.05},
        }
        self.id = image_workload(client, name, config)
        client.put(
            f"/api/workloads/{self.id}/volumes",
            json=[{"name": "data", "scope": "stage", "source": f"{name}/data", "target": "/data"}],
        ).raise_for_status()
        volume = client.get(f"/api/workloads/{self.id}/volumes").raise_for_status().json()
        self.volume = Path(volume["items"][0]["host_path"])
        self.files = fill(self.volume, size)
        did = client.post(f"/api/workloads/{self.id}/deploy").raise_for_status().json()["id"]
        deployed = _wait(
            client,
            f"/api/workloads/{self.id}/deployments/{did}",
            lambda d: d["status"] not in ("queued", "running"),
        )
        if deployed["status"] != "succeeded":
            raise RuntimeError(f"deploy of {name} failed: {deployed['log']}")
        sid = (
            client.post(f"/api/workloads/{self.id}/snapshots", json={"mode": "none"})
            .raise_for_status()
            .json()["id"]
        )
        self.snapshot = _wait(
            client,
            f"/api/workloads/{self.id}/snapshots/{sid}",
            lambda s: s["status"] != "capturing",
        )
        if self.snapshot["status"] != "ready":
            raise RuntimeError(f"capture of {name} failed: {self.snapshot['error']}")

    def _request(self) -> tuple[float, str]:
        """POST the restore; answer when it was accepted and its id. The previous round's
        restore refuses a new one (409) until its replaced data is packed and removed, a
        little after the API shows it finished, so retry that."""
        deadline = time.monotonic() + 120
        while True:
            started = time.perf_counter()
            r = self.client.post(
                f"/api/workloads/{self.id}/snapshots/{self.snapshot['id']}/restore",
                headers={"X-Confirm-Restore": self.name},
            )
            busy = r.status_code == 409 and r.json()["error"]["code"] == "restore_running"
            if not busy or time.monotonic() > deadline:
                return started, str(r.raise_for_status().json()["id"])
            time.sleep(0.1)

    def restore_once(self) -> Round:
        """Restore the snapshot over changed data and measure it."""
        (self.volume / "changed-since-the-snapshot").write_text("new\n")
        since = time.time()
        with Outages(self.port) as probe:
            started, rid = self._request()
            path = f"/api/workloads/{self.id}/restores/{rid}"
            done = _wait(self.client, path, lambda r: r["status"] != "running")
            took = time.perf_counter() - started
            if done["status"] != "succeeded":
                raise RuntimeError(f"restore of {self.name} {done['status']}: {done['error']}")
            probe.wait(probe.recovered, "the app to serve after the restore")
            gaps = probe.gaps()
        stopped = stopped_for(f"label=moorage.workload={self.id}", since, time.time())
        if (self.volume / "changed-since-the-snapshot").exists():
            raise RuntimeError("the restore left data that is not in the snapshot")
        if len(gaps) != 1:
            print(f"  ({self.name}: {len(gaps)} outages: {', '.join(_ms(g) for g in gaps)})")
        # Let the replaced data be packed, then drop that snapshot: the next round starts quiet.
        done = _wait(self.client, path, lambda r: r["pre_restore_snapshot_id"] is not None)
        pre = f"/api/workloads/{self.id}/snapshots/{done['pre_restore_snapshot_id']}"
        _wait(self.client, pre, lambda s: s["status"] != "capturing")
        self.client.delete(pre).raise_for_status()
        return Round(sum(gaps), stopped, took)


# --- the naive sequence ---------------------------------------------------------


def plain_round(script: str, port: int, container: str) -> Round:
    since = time.time()
    with Outages(port) as probe:
        subprocess.run(["bash", "-o", "pipefail", "-c", script], check=True)
        probe.wait(probe.recovered, "the plain container to serve again")
        gaps = probe.gaps()
    return Round(sum(gaps), stopped_for(f"container={container}", since, time.time()))


def naive_once(archive: Path, volume: Path, port: int, container: str) -> Round:
    """docker stop, rm -rf, zstd -dc | tar -x, docker start, wait serving: the downtime."""
    (volume / "changed-since-the-snapshot").write_text("new\n")
    a, v = shlex.quote(str(archive)), shlex.quote(str(volume))
    done = plain_round(
        f"docker stop -t 10 {container} >/dev/null && rm -rf {v} && mkdir {v} && "
        f"zstd -dc {a} | tar -xf - -C {v} --strip-components=2 volumes/0 && "
        f"docker start {container} >/dev/null",
        port,
        container,
    )
    if (volume / "changed-since-the-snapshot").exists():
        raise RuntimeError("the naive restore left data that is not in the snapshot")
    return done


def naive(archive: Path, work: Path, rounds: int) -> tuple[list[Round], list[Round]]:
    """The naive sequence's downtimes, and those of a bare ``docker stop`` + ``docker start``
    of the same container (the floor any restore that stops the container pays)."""
    volume = work / "plain-volume"
    volume.mkdir()
    subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"zstd -dc {shlex.quote(str(archive))} | "
            f"tar -xf - -C {shlex.quote(str(volume))} --strip-components=2 volumes/0",
        ],
        check=True,
    )
    port = free_port()
    container = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--init",
            "--restart",
            "unless-stopped",
            "-p",
            f"127.0.0.1:{port}:8080",
            "--mount",
            f"type=bind,source={volume},target=/data",
            "--label",
            PLAIN_LABEL,
            IMAGE,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        bare = f"docker stop -t 10 {container} >/dev/null && docker start {container} >/dev/null"
        floor = [plain_round(bare, port, container) for _ in range(rounds)]
        return [naive_once(archive, volume, port, container) for _ in range(rounds)], floor
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


# --- the run ------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _line(label: str, rounds: list[Round]) -> float:
    """Print one row: medians of the probe's downtime and of docker's stopped window."""
    down = statistics.median(r.downtime for r in rounds)
    stopped = statistics.median(r.stopped for r in rounds)
    print(
        f"{label}: downtime median {_ms(down)} "
        f"({', '.join(_ms(r.downtime) for r in rounds)}); "
        f"stopped -> started {_ms(stopped)}"
        + (
            f"; whole restore {statistics.median(r.took for r in rounds):.2f} s"
            if rounds[0].took
            else ""
        )
    )
    return down


def run() -> None:
    if shutil.which("zstd") is None:
        subprocess.run(["apt-get", "install", "-y", "zstd"], check=True)
    subprocess.run(["scripts/docker.sh"], check=True)
    subprocess.run(["scripts/test-images.sh"], check=True)
    big_mib = int(os.environ.get("MOORAGE_BENCH_RESTORE_MIB", "1024"))
    with tempfile.TemporaryDirectory(prefix="moorage-bench-restore-") as tmp:
        work = Path(tmp)
        data_dir = work / "var"
        with running_server(data_dir) as (client, _pid):
            client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
            started = time.perf_counter()
            small, big = Case(client, "small", MIB), Case(client, "big", big_mib * MIB)
            print(
                f"volumes: 1 MiB in {small.files} files, {big_mib} MiB in {big.files} files; "
                f"set up and captured in {time.perf_counter() - started:.1f} s (not measured)"
            )
            results: dict[str, list[Round]] = {"small": [], "big": []}
            for round_ in range(ROUNDS):
                for case in (small, big) if round_ % 2 == 0 else (big, small):
                    results[case.name].append(case.restore_once())
            archive = data_dir / "snapshots" / big.id / f"{big.snapshot['id']}.tar.zst"
            plain, floor = naive(archive, work, ROUNDS)
    down_small = _line("moorage restore     1 MiB", results["small"])
    down_big = _line(f"moorage restore {big_mib:>5} MiB", results["big"])
    print(f"downtime ratio {big_mib} MiB / 1 MiB: {down_big / down_small:.2f} (target <= {TARGET})")
    down_naive = _line(f"naive stop/rm -rf/zstd -dc|tar -x/start, {big_mib} MiB", plain)
    print(f"naive / moorage at {big_mib} MiB: {down_naive / down_big:.1f}x")
    down_floor = _line("floor, bare docker stop + docker start", floor)
    print(f"moorage {big_mib} MiB / floor: {down_big / down_floor:.2f} (target <= {FLOOR_TARGET})")
