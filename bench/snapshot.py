"""Snapshot capture and extraction vs ``tar | zstd`` on the same generated tree.

Budgets (SPEC section 8): capture throughput >= 0.9 x ``tar -c | zstd -3 -T0``,
extraction >= 0.8 x ``zstd -d | tar -x``, and Moorage's peak RSS <= 128 MiB for
either. Each Moorage step runs in its own child process (``python -m
bench.snapshot capture|extract ...``) that reports its time and its ``VmHWM``, so
the RSS is Moorage's alone, interpreter and imports included. Each side runs
``ROUNDS`` times, alternating which goes first; the best time counts. The page
cache is warm for both, and ``sync`` runs (untimed) before every step so one
step's writeback never lands in the next one's time. Moorage fsyncs what it
writes (the plain tools do not); the time ``sync`` then takes after a plain step
is printed beside it. ``MOORAGE_BENCH_SNAPSHOT_MIB`` sizes the tree (default 1024).
Nothing here asserts; the numbers are for people.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
KIB = 1 << 10
ROUNDS = 3
CAPTURE_TARGET = 0.9
EXTRACT_TARGET = 0.8
RSS_TARGET_MIB = 128
REPO = Path(__file__).resolve().parent.parent
WORKLOAD = {"id": "wl_bench", "name": "bench", "kind": "image"}


# --- the tree ---------------------------------------------------------------


def _corpus(rng: random.Random, size: int) -> bytes:
    """Log-like text from a fixed vocabulary: compresses about as well as real logs do."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(4000)]
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    lines: list[str] = []
    length = 0
    while length < size:
        words = " ".join(rng.choices(vocab, k=rng.randint(4, 16)))
        line = (
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z "
            f"{rng.choice(levels)} req={rng.getrandbits(32):08x} user={rng.randint(1, 99999)} "
            f"{words}\n"
        )
        lines.append(line)
        length += len(line)
    return "".join(lines).encode()[:size]


class _Content:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.corpus = _corpus(rng, 8 * MIB)
        self.random_bytes = 0

    def text(self, size: int) -> bytes:
        start = self.rng.randrange(len(self.corpus) - size) if size < len(self.corpus) else 0
        return self.corpus[start : start + size]

    def write(self, path: Path, size: int, random_share: float) -> None:
        """Write ``size`` bytes in chunks of up to 1 MiB, each random or text."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            left = size
            while left:
                n = min(left, MIB)
                if self.rng.random() < random_share:
                    out.write(os.urandom(n))
                    self.random_bytes += n
                else:
                    out.write(self.text(n))
                left -= n


def generate(tree: Path, target: int) -> tuple[int, int, int]:
    """A tree of about ``target`` bytes: 15% small files (1-64 KiB), 35% files of
    1-8 MiB, 50% in three big files. Answer (files, bytes, random bytes)."""
    rng = random.Random(20240501)  # noqa: S311 (reproducible test data, not secrets)
    content = _Content(rng)
    files = total = 0
    small_budget, medium_budget = target * 15 // 100, target * 35 // 100
    big_budget = target - small_budget - medium_budget
    used = 0
    while used < small_budget:
        size = min(rng.randint(1 * KIB, 64 * KIB), small_budget - used)
        ext = rng.choice(["json", "txt", "bin", "log"])
        path = tree / "small" / f"{files % 32:02d}" / f"{files % 7}" / f"f{files:06d}.{ext}"
        content.write(path, size, 0.5)
        used += size
        files += 1
    (tree / "small" / "empty-dir").mkdir(parents=True)
    (tree / "small" / "empty-file").touch()
    files += 1
    total += used
    used = 0
    while used < medium_budget:
        size = min(rng.randint(1 * MIB, 8 * MIB), medium_budget - used)
        content.write(tree / "medium" / f"{files % 4}" / f"blob-{files}.dat", size, 0.5)
        used += size
        files += 1
    total += used
    for i in range(3):
        size = big_budget // 3 + (big_budget % 3 if i == 0 else 0)
        content.write(tree / "big" / f"db-{i}.pages", size, 0.5)
        files += 1
        total += size
    files, total = _odd_entries(tree, rng, files, total)
    return files, total, content.random_bytes


def _odd_entries(tree: Path, rng: random.Random, files: int, total: int) -> tuple[int, int]:
    """What real volumes hold beside plain files: symlinks (certbot's live/ tree), hard
    links, a sparse VM image, a fifo, and names with backslashes, newlines and bytes
    that are not UTF-8. Answer the new (regular files, bytes)."""
    odd = tree / "odd"
    odd.mkdir()
    for i in range(200):
        (odd / f"v{i}.pem").write_bytes(rng.randbytes(1500))
        os.symlink(f"v{i}.pem", odd / f"latest-{i}.pem")
        files, total = files + 1, total + 1500
    os.symlink("/etc/ssl/certs", odd / "absolute-link")
    os.symlink("../../nowhere", odd / "dangling-link")
    for i in range(50):
        os.link(odd / f"v{i}.pem", odd / f"hard-{i}.pem")
    for name in (b"report\\2025.txt", b"new\nline.txt", b"caf\xe9.txt", b"\xff\xfe.bin"):
        (odd / os.fsdecode(name)).write_bytes(name * 100)
        files, total = files + 1, total + len(name) * 100
    sparse = 64 * MIB
    with (odd / "vm.img").open("wb") as f:  # 64 MiB apparent, a few KiB on disk
        f.truncate(sparse)
        for at in (0, 17 * MIB + 5, sparse - 11):
            f.seek(at)
            f.write(b"sparse-mark")
    os.mkfifo(odd / "pipe")
    return files + 1, total + sparse


def _count(root: Path) -> tuple[int, int]:
    """Regular files (each inode once) and their bytes: what the manifest counts."""
    seen: set[int] = set()
    total = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return len(seen), total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


# --- the two sides ----------------------------------------------------------


def _ensure_zstd() -> None:
    if shutil.which("zstd") is None:
        subprocess.run(["apt-get", "install", "-y", "zstd"], check=True)


def _shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - start


def _timed_sync() -> float:
    start = time.perf_counter()
    os.sync()
    return time.perf_counter() - start


def plain_capture(tree: Path, out: Path) -> float:
    src, dest = shlex.quote(str(tree)), shlex.quote(str(out))
    return _shell(f"tar -cf - -C {src} . | zstd -3 -T0 -q -o {dest}")


def plain_extract(archive: Path, into: Path) -> float:
    src, dest = shlex.quote(str(archive)), shlex.quote(str(into))
    return _shell(f"zstd -dc {src} | tar -xf - -C {dest}")


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.snapshot", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args[0]} failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def moorage_capture(tree: Path, dest: Path) -> dict[str, float]:
    return _child("capture", str(tree), str(dest))


def moorage_extract(archive: Path, into: Path, max_bytes: int) -> dict[str, float]:
    return _child("extract", str(archive), str(into), str(max_bytes))


def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_main(args: list[str]) -> None:
    """In the child: one Moorage step, then one JSON line with its time and peak RSS."""
    from moorage.snapshots.archive import Limits, VolumeSource, read_archive, write_archive

    if args[0] == "capture":
        tree, dest = Path(args[1]), Path(args[2])
        volume = VolumeSource(index=0, name="data", scope="stage", source="bench/data", path=tree)
        start = time.perf_counter()
        written = write_archive(dest, WORKLOAD, [volume], threads=-1)
        seconds = time.perf_counter() - start
        report = {"seconds": seconds, "size": written.size, "warnings": len(written.warnings)}
    else:
        archive, into, max_bytes = Path(args[1]), Path(args[2]), int(args[3])
        start = time.perf_counter()
        with archive.open("rb") as src:
            manifest = read_archive(src, limits=Limits(max_bytes=max_bytes), staging={0: into})
        seconds = time.perf_counter() - start
        volume = manifest["volumes"][0]
        report = {"seconds": seconds, "files": volume["files"], "bytes": volume["bytes"]}
    print(json.dumps({**report, "hwm_mib": _hwm_mib()}))


# --- the run ----------------------------------------------------------------


def _rate(total: int, seconds: float) -> str:
    return f"{seconds:.2f} s ({total / MIB / seconds:.0f} MiB/s)"


def run() -> None:
    _ensure_zstd()
    size_mib = int(os.environ.get("MOORAGE_BENCH_SNAPSHOT_MIB", "1024"))
    with tempfile.TemporaryDirectory(prefix="moorage-bench-snapshot-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        started = time.perf_counter()
        files, total, random_bytes = generate(tree, size_mib * MIB)
        os.sync()
        print(
            f"tree: {files} files, {total / MIB:.0f} MiB ({random_bytes * 100 // total}% random), "
            f"generated in {time.perf_counter() - started:.1f} s (not measured)"
        )

        plain_out, moorage_out = work / "plain.tar.zst", work / "moorage.tar.zst"
        plain_times, plain_syncs, ours, ours_rss = [], [], [], []
        for round_ in range(ROUNDS):
            for side in ("plain", "moorage") if round_ % 2 == 0 else ("moorage", "plain"):
                os.sync()
                if side == "plain":
                    plain_out.unlink(missing_ok=True)
                    plain_times.append(plain_capture(tree, plain_out))
                    plain_syncs.append(_timed_sync())
                else:
                    moorage_out.unlink(missing_ok=True)
                    result = moorage_capture(tree, moorage_out)
                    ours.append(result["seconds"])
                    ours_rss.append(result["hwm_mib"])
                    if result["warnings"]:
                        print(f"  (write_archive gave {int(result['warnings'])} warnings)")
        plain_best, ours_best = min(plain_times), min(ours)
        capture_ratio = plain_best / ours_best
        capture_rss = max(ours_rss)
        print(
            f"capture  tar -c | zstd -3 -T0: best {_rate(total, plain_best)}, "
            f"{plain_out.stat().st_size / MIB:.0f} MiB; then sync {min(plain_syncs):.2f} s"
        )
        print(
            f"capture  moorage write_archive: best {_rate(total, ours_best)}, "
            f"{moorage_out.stat().st_size / MIB:.0f} MiB, fsync included"
        )
        print(
            f"capture ratio {capture_ratio:.2f} (target >= {CAPTURE_TARGET}); "
            f"{_spread(plain_times, ours)}"
        )
        plain_out.unlink()

        # Both sides extract the same bytes: the archive Moorage wrote.
        plain_dir, moorage_dir = work / "plain-x", work / "moorage-x"
        plain_times, plain_syncs, ours, ours_rss = [], [], [], []
        for round_ in range(ROUNDS):
            for side in ("plain", "moorage") if round_ % 2 == 0 else ("moorage", "plain"):
                target = plain_dir if side == "plain" else moorage_dir
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                os.sync()
                if side == "plain":
                    plain_times.append(plain_extract(moorage_out, target))
                    plain_syncs.append(_timed_sync())
                else:
                    result = moorage_extract(moorage_out, target, 2 * total + MIB)
                    ours.append(result["seconds"])
                    ours_rss.append(result["hwm_mib"])
        _check(tree, moorage_dir, plain_dir / "volumes" / "0", (files, total))
        plain_best, ours_best = min(plain_times), min(ours)
        extract_ratio = plain_best / ours_best
        extract_rss = max(ours_rss)
        print(
            f"extract  zstd -d | tar -x:     best {_rate(total, plain_best)}; "
            f"then sync {min(plain_syncs):.2f} s"
        )
        print(f"extract  moorage read_archive:  best {_rate(total, ours_best)}, fsync included")
        print(
            f"extraction ratio {extract_ratio:.2f} (target >= {EXTRACT_TARGET}); "
            f"{_spread(plain_times, ours)}"
        )
        print(
            f"peak RSS capture {capture_rss:.0f} MiB, extract {extract_rss:.0f} MiB "
            f"(target <= {RSS_TARGET_MIB})"
        )


def _spread(plain: list[float], ours: list[float]) -> str:
    """Each round's ratio (the plain tool's time over Moorage's), and their range."""
    ratios = [p / o for p, o in zip(plain, ours, strict=True)]
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    return f"per round {rounds} (spread {max(ratios) - min(ratios):.2f})"


def _check(tree: Path, ours: Path, plain: Path, expected: tuple[int, int]) -> None:
    """Both extractions hold the tree: same counts, and the same bytes in a sample."""
    for what, root in (("moorage", ours), ("plain", plain)):
        counted = _count(root)
        if counted != expected:
            raise RuntimeError(f"{what} extraction holds {counted}, the tree {expected}")
    sample = [tree / "big" / "db-0.pages", *sorted((tree / "small" / "00" / "0").iterdir())[:3]]
    for path in sample:
        rel = path.relative_to(tree)
        if not _sha256(path) == _sha256(ours / rel) == _sha256(plain / rel):
            raise RuntimeError(f"{rel} differs after extraction")


if __name__ == "__main__":
    _child_main(sys.argv[1:])
