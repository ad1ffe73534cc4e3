"""An off-site copy of a 1 GiB archive to the SFTP target, against ``sftp put`` of the
same file in the same run, and Moorage's peak RSS while it copies.

Budget (issue 17): the copy's upload >= 0.8x the speed of OpenSSH's ``sftp put``. Both go
to the project's own sshd (``scripts/sftp.sh``) over loopback; the archive is random
bytes (zstd cannot shrink it). Each side runs ``ROUNDS`` times, alternated, so a busy
machine hurts both alike; the ratio of the medians and the spread (min-max) are printed.
Moorage's time is ``POST .../copies`` until the copy reads ``verified``, which includes
reading the copy back and decrypting it to verify (``sftp put`` verifies nothing), so the
upload alone is also timed in-process over the same code path (``transfer.upload``).
Peak RSS is the most the server's VmRSS reached while copying (sampled every 0.1 s; the
targets are made first, because making one runs age's scrypt on the passphrase, which
takes about 256 MiB for a moment by design), and its VmHWM over the whole run.
``MOORAGE_BENCH_OFFSITE_MIB`` shrinks the archive for a quick look. Nothing here asserts;
the numbers are for people.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.server import image_workload, running_server
from moorage.offsite import transfer
from moorage.storage.encryption import new_keypair
from moorage.storage.sftp import SftpStorage

REPO = Path(__file__).resolve().parent.parent
MIB = int(os.environ.get("MOORAGE_BENCH_OFFSITE_MIB", "1024"))
ROUNDS = 3
BUDGET = 0.8


def _sftp() -> tuple[Path, dict[str, str]]:
    out = subprocess.run(
        [str(REPO / "scripts" / "sftp.sh")], capture_output=True, text=True, check=True
    )
    where = Path(out.stdout.strip().splitlines()[-1])
    env = dict(
        line.split("=", 1) for line in (where / "env").read_text().splitlines() if "=" in line
    )
    return where, env


def _config(where: Path, env: dict[str, str]) -> dict[str, object]:
    pub = (where / "host_key.pub").read_text().split()
    return {
        "host": env["host"],
        "port": int(env["port"]),
        "username": env["user"],
        "path": f"{where}/home/bench-{uuid.uuid4().hex[:8]}",
        "private_key": (where / "client_key").read_text(),
        "host_key": f"{pub[0]} {pub[1]}",
    }


def _sftp_put(where: Path, env: dict[str, str], src: Path, dest: str) -> float:
    known = where / "bench_known_hosts"
    pub = (where / "host_key.pub").read_text().split()
    known.write_text(f"[{env['host']}]:{env['port']} {pub[0]} {pub[1]}\n")
    started = time.perf_counter()
    subprocess.run(
        [
            "sftp",
            "-q",
            "-b",
            "-",
            "-i",
            str(where / "client_key"),
            "-P",
            env["port"],
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"{env['user']}@{env['host']}",
        ],
        input=f"put {src} {dest}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Sampler:
    """The highest VmRSS of ``pid`` while it is running (``with``)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak = max(self.peak, int(line.split()[1]) / 1024)
            time.sleep(0.1)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run() -> None:
    where, env = _sftp()
    config = _config(where, env)
    with tempfile.TemporaryDirectory(prefix="moorage-bench-offsite-") as tmp:
        data_dir = Path(tmp) / "var"
        with running_server(data_dir) as (client, pid):
            client.post("/api/projects", json={"slug": "bench"}).raise_for_status()
            w = {"id": image_workload(client, "big", {"image": "moorage-test/httpd:1"})}
            client.put(
                f"/api/workloads/{w['id']}/volumes",
                json=[{"name": "d", "scope": "stage", "source": "big/d", "target": "/d"}],
            ).raise_for_status()
            volume = data_dir / "volumes" / "bench" / "production" / "big" / "d"
            volume.mkdir(parents=True)
            with open(volume / "blob", "wb") as out:
                for _ in range(MIB):
                    out.write(os.urandom(1 << 20))
            sid = client.post(f"/api/workloads/{w['id']}/snapshots", json={"mode": "none"}).json()[
                "id"
            ]
            while (snap := client.get(f"/api/workloads/{w['id']}/snapshots/{sid}").json())[
                "status"
            ] == "capturing":
                time.sleep(0.5)
            archive = data_dir / "snapshots" / w["id"] / f"{sid}.tar.zst"
            put_times, copy_times, upload_times = [], [], []
            keys = new_keypair()
            targets = [
                client.post(
                    "/api/storage-targets",
                    json={
                        "name": f"bench-{n}",
                        "kind": "sftp",
                        "config": {**config, "path": f"{config['path']}-{n}"},
                        "passphrase": "bench passphrase, long enough",
                    },
                ).json()["id"]
                for n in range(ROUNDS)
            ]
            sampler = _Sampler(pid)
            copying_peak = 0.0
            for n, target in enumerate(targets):
                put_times.append(_sftp_put(where, env, archive, f"put-{n}.bin"))
                started = time.perf_counter()
                with sampler if n == 0 else _Sampler(pid) as watching:
                    client.post(
                        f"/api/workloads/{w['id']}/snapshots/{sid}/copies",
                        json={"target_id": target},
                    ).raise_for_status()
                    while True:
                        got = client.get(f"/api/workloads/{w['id']}/snapshots/{sid}").json()
                        [copy] = [c for c in got["copies"] if c["target_id"] == target]
                        if copy["status"] in ("verified", "failed"):
                            break
                        time.sleep(0.2)
                copy_times.append(time.perf_counter() - started)
                copying_peak = max(copying_peak, watching.peak)
                store = SftpStorage().open({**config, "path": f"{config['path']}-up{n}"})
                try:
                    started = time.perf_counter()
                    transfer.upload(
                        store,
                        "bench/upload.age",
                        archive,
                        keys.recipient,
                        size=snap["size"],
                        sha256=snap["sha256"],
                    )
                    upload_times.append(time.perf_counter() - started)
                finally:
                    store.close()
            peak = _peak_mib(pid)
    size_mib = snap["size"] / (1 << 20)

    def line(name: str, times: list[float]) -> str:
        return (
            f"{name}: median {statistics.median(times):.1f} s "
            f"({size_mib / statistics.median(times):.0f} MiB/s), "
            f"spread {min(times):.1f}-{max(times):.1f} s"
        )

    print(f"archive {size_mib:.0f} MiB, {ROUNDS} rounds each, alternated")
    print(line("sftp put", put_times))
    print(line("moorage upload (encrypt + put)", upload_times))
    print(line("moorage copy (upload + read back + verify)", copy_times))
    ratio_up = statistics.median(put_times) / statistics.median(upload_times)
    ratio_copy = statistics.median(put_times) / statistics.median(copy_times)
    print(
        f"speed vs sftp put: upload {ratio_up:.2f}x, whole copy {ratio_copy:.2f}x; "
        f"budget {BUDGET}x; last copy {copy['status']}"
    )
    print(
        f"moorage server peak RSS while copying {copying_peak:.0f} MiB; "
        f"VmHWM over the run (capture, scrypt of each target's passphrase) {peak:.0f} MiB"
    )
