"""A deployed workload with two volumes and a snapshot of them, over the in-memory engine;
and crash points that raise where the server would SIGKILL itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from moorage.snapshots.restore import RestoreEngine
from moorage.store.tables import Deployment
from tests.fakes.world import World

VOLUMES = ("v0", "v1")


class Crash(BaseException):
    """The process dies here: not an Exception, so nothing in Moorage catches it."""


class CrashAt:
    """A ``Deployer.fault`` that raises ``Crash`` at one named point (or none)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.seen: list[str] = []

    def __call__(self, name: str) -> None:
        self.seen.append(name)
        if name == self.name:
            raise Crash(name)


def fill(path: Path, label: str) -> None:
    """Make ``path`` hold a small tree marked ``label``, replacing what it held."""
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        child.unlink()
    (path / "index.html").write_text(f"{label}\n")
    (path / f"only-in-{label}").write_bytes(os.urandom(3000))


def read_tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@dataclass
class Site:
    world: World
    id: str
    snapshot: str
    deployed: Deployment
    old: dict[str, dict[str, bytes]]
    """The trees the snapshot holds."""
    new: dict[str, dict[str, bytes]]
    """The trees live when the restore starts."""

    def trees(self) -> dict[str, dict[str, bytes]]:
        return {v: read_tree(self.world.live(self.id, v)) for v in VOLUMES}

    def leftovers(self) -> list[str]:
        parent = self.world.live(self.id).parent
        return sorted(p.name for p in parent.iterdir() if p.name.startswith(".moorage-"))

    def journals(self) -> list[str]:
        folder = self.world.settings.journals_dir
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def restore(self, restorer: RestoreEngine | None = None) -> str:
        """Accept a restore of the snapshot and run it in this thread; its id."""
        restorer = restorer or self.world.restorer()
        restore_id = self.world.request_restore(restorer, self.id, self.snapshot)
        restorer.run(restore_id)
        return restore_id


@pytest.fixture
def site(world: World) -> Site:
    workload_id = world.workload(volumes=len(VOLUMES))
    deployed = world.deploy(workload_id)
    assert deployed.status == "succeeded", deployed.error
    for v in VOLUMES:
        fill(world.live(workload_id, v), f"old-{v}")
    old = {v: read_tree(world.live(workload_id, v)) for v in VOLUMES}
    snapshot = world.snapshot(workload_id)
    for v in VOLUMES:
        fill(world.live(workload_id, v), f"new-{v}")
    new = {v: read_tree(world.live(workload_id, v)) for v in VOLUMES}
    return Site(world, workload_id, snapshot, deployed, old, new)
