"""A Moorage without a server process or Docker: the real store (SQLite in a temp
directory), the real registry and services, and every part ``moorage.server.build``
wires, over the in-memory ``FakeEngine``.

Rows are made through the services, as the API would make them, and deploys run
through ``DeployQueue.run``: what a test reads back is what the real code wrote.
``World.fault`` is the fault points every part calls; a test swaps it for one that
raises where the server would kill itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from moorage.deployer.facade import Deployer
from moorage.plugins.registry import Registry
from moorage.runtime.compose import ComposeRunner
from moorage.security.roles import SYSTEM
from moorage.server import Server, build
from moorage.services import deploys, projects, workloads
from moorage.services import env as env_service
from moorage.services import snapshots as snapshot_service
from moorage.services import volumes as volume_service
from moorage.services.volumes import VolumeSpec
from moorage.settings import Settings
from moorage.snapshots.restore import RestoreEngine, RestoreTools
from moorage.store.db import Database
from moorage.store.states import DeploymentStatus
from moorage.store.tables import Deployment, Restore, Snapshot
from tests.fakes.engine import FakeEngine

PROJECT = "shop"
STAGE = "production"
IMAGE_V1 = "moorage-test/httpd:1"
IMAGE_V2 = "moorage-test/httpd:2"
# No health probe and no grace: a started container is healthy at once.
HEALTHY_AT_ONCE = {"grace_seconds": 0}
WAIT = 5.0
"""Seconds a test waits on another thread: a real timer, so a stuck thread fails it."""


def no_fault(name: str) -> None:
    return None


@dataclass
class World:
    settings: Settings
    db: Database
    engine: FakeEngine
    server: Server = field(init=False)
    fault: Callable[[str], None] = no_fault

    def __post_init__(self) -> None:
        self.server = build(
            self.settings,
            self.db,
            Registry.load(),
            self.engine,
            compose=ComposeRunner(),
            fault=lambda name: self.fault(name),
        )

    @property
    def deployer(self) -> Deployer:
        return self.server.deployer

    @property
    def tools(self) -> RestoreTools:
        """What the server hands a restore (its run, recovery and packing)."""
        return self.server.restorer.tools

    @contextmanager
    def held_elsewhere(self, workload_id: str) -> Iterator[None]:
        """The workload's lock, held by another thread meanwhile (the lock is re-entrant
        per thread: the test's own thread holding it would not make the workload busy)."""
        taken, done = threading.Event(), threading.Event()

        def hold() -> None:
            with self.server.locks.hold(workload_id, timeout=WAIT):
                taken.set()
                done.wait(WAIT)

        holder = threading.Thread(target=hold)
        holder.start()
        assert taken.wait(WAIT), "the holder never took the lock"
        try:
            yield
        finally:
            done.set()
            holder.join(WAIT)
            assert not holder.is_alive()

    def restorer(self) -> RestoreEngine:
        """A fresh restore engine (no single-flight state) over the same parts."""
        return RestoreEngine(self.tools)

    def workload(
        self, name: str = "app", *, config: dict[str, Any] | None = None, volumes: int = 1
    ) -> str:
        """An image workload with ``volumes`` stage volumes named ``v0``, ``v1``...; its id."""
        with self.db.session() as s:
            w = workloads.create(
                s,
                SYSTEM,
                self.deployer.registry,
                self.settings,
                name=name,
                kind="image",
                project=PROJECT,
                stage=STAGE,
                config=config or {"image": IMAGE_V1, "health": HEALTHY_AT_ONCE},
            )
            volume_service.replace(
                s,
                SYSTEM,
                self.settings,
                self.deployer.registry,
                w.id,
                [VolumeSpec(f"v{i}", "stage", f"{name}/v{i}", f"/v{i}") for i in range(volumes)],
            )
            return w.id

    def edit(self, workload_id: str, config: dict[str, Any]) -> None:
        """A saved change (JSON merge patch) that no deploy has run."""
        with self.db.session() as s:
            workloads.update(
                s, SYSTEM, self.deployer.registry, self.settings, workload_id, config=config
            )

    def set_env(self, workload_id: str, values: dict[str, str]) -> None:
        """Replace the workload's env with plain (not secret) ``values``; no deploy runs."""
        wanted = {key: {"value": value, "secret": False} for key, value in values.items()}
        with self.db.session() as s:
            env_service.replace(
                s, SYSTEM, self.deployer.registry, self.settings, workload_id, wanted
            )

    def deploy(self, workload_id: str) -> Deployment:
        """Queue a deploy and run it at once, as a worker would; the finished row."""
        with self.db.session() as s:
            deployment_id = deploys.enqueue(s, SYSTEM, workload_id, "manual").id
        assert self.server.queue.claim(deployment_id)
        with self.server.locks.hold(workload_id, timeout=5):
            self.server.queue.run(deployment_id)
        return self.deployment(deployment_id)

    def deployment(self, deployment_id: str) -> Deployment:
        with self.db.session() as s:
            row = s.get(Deployment, deployment_id)
            assert row is not None
            return row

    def snapshot(self, workload_id: str) -> str:
        """Capture every volume (mode ``stop``) at once, as the capture thread would."""
        with self.db.session() as s:
            snapshot_id = snapshot_service.request_capture(
                s, SYSTEM, self.deployer.registry, workload_id, volumes=None, mode="stop"
            ).id
        self.server.snapshotter.capture(snapshot_id)
        with self.db.session() as s:
            snap = s.get(Snapshot, snapshot_id)
            assert snap is not None and snap.status == "ready", snap and snap.error
        return snapshot_id

    def request_restore(
        self,
        restorer: RestoreEngine,
        workload_id: str,
        snapshot_id: str,
        volumes: list[str] | None = None,
    ) -> str:
        """Accept a restore as the route does (its caller then runs it); its id."""
        with self.db.session() as s:
            return restorer.request(s, SYSTEM, workload_id, snapshot_id, volumes).id

    def restore_row(self, restore_id: str) -> Restore:
        with self.db.session() as s:
            row = s.get(Restore, restore_id)
            assert row is not None
            return row

    def deployments(self, workload_id: str) -> list[Deployment]:
        """Newest first."""
        with self.db.session() as s:
            rows = s.scalars(
                select(Deployment)
                .where(Deployment.workload_id == workload_id)
                .order_by(Deployment.created_at.desc())
            )
            return list(rows)

    def live(self, workload_id: str, volume: str = "v0") -> Path:
        with self.db.session() as s:
            view = self.server.views.view(s, workload_id)
        return next(v.host_path for v in view.volumes if v.name == volume)


def make_world(tmp_path: Path, **settings: Any) -> World:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    config = Settings(data_dir=data_dir, **settings)
    db = Database(f"sqlite:///{data_dir / 'moorage.db'}")
    db.migrate()
    engine = FakeEngine()
    engine.add_image(IMAGE_V1)
    engine.add_image(IMAGE_V2)
    world = World(config, db, engine)
    with db.session() as s:
        projects.create(s, SYSTEM, slug=PROJECT)
    return world


def ran(db: Database) -> None:
    """Every queued deployment ends as succeeded, as the workers would run them between
    two slots: a firing joins a deployment still queued (``services/firing``), so a test
    that counts one deployment per slot runs the queue in between."""
    with db.session() as s:
        s.execute(
            update(Deployment)
            .where(Deployment.status == DeploymentStatus.QUEUED)
            .values(status=DeploymentStatus.SUCCEEDED)
        )
