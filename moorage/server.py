"""The one composition root: every long-lived part of a Moorage server, built once, and
the order in which start-up recovery runs.

``build`` makes settings, store, registry, engine, locks, workload views, the deploy
queue, the reconciler, the trigger runner, the snapshotter and the restorer, each
given the collaborators it uses and nothing more. ``moorage serve`` and
``api.app.create_app`` use it; the offline commands use ``open_store`` alone. Nothing
else constructs these parts (tests build them with ``build`` too, over a fake engine).
It must never import ``moorage.api``: the API wires a built ``Server``, not the reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from moorage.deployer.facade import Deployer
from moorage.deployer.queue import DeployQueue
from moorage.deployer.reconcile import Reconciler
from moorage.deployer.trigger_runner import TriggerRunner
from moorage.deployer.views import WorkloadViews
from moorage.errors import MoorageError
from moorage.faults import FaultPoints
from moorage.offsite.backup_runner import BackupRunner
from moorage.offsite.copier import Copier
from moorage.plugins.registry import Registry
from moorage.proxy.router import Router
from moorage.runtime.compose import ComposeRunner
from moorage.runtime.engine import Engine
from moorage.security import secrets as sec
from moorage.security.roles import SYSTEM
from moorage.services import users
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.snapshots.capture import Snapshotter
from moorage.snapshots.checkpoint import Checkpointer, Rollback
from moorage.snapshots.clone import Cloner
from moorage.snapshots.drills import DrillRunner
from moorage.snapshots.recovery_points import RecoveryPoints
from moorage.snapshots.restore import RestoreEngine, RestoreTools
from moorage.store.db import Database

log = logging.getLogger("moorage.server")
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    """The admin user ``ensure_first_admin`` created, so ``serve`` can print it once."""

    username: str
    password: str
    generated: bool


def open_store(settings: Settings) -> Database:
    """Create the data directory if needed (owner only) and migrate the database to the
    newest schema. Runs before anything is served, for ``serve`` and the offline
    commands alike."""
    # Secrets (env values, the database, archives of user data) live here: owner only.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    db = Database(settings.database_url)
    db.migrate(apart=True)  # Alembic, when needed, in a child: never in the server
    return db


def ensure_first_admin(settings: Settings, db: Database) -> FirstAdmin | None:
    """Create the ``admin`` user when there are no users yet; return it so it can be printed
    (``MOORAGE_ADMIN_PASSWORD``, or a generated password)."""
    with db.session() as session:
        if users.count(session):
            return None
        password = settings.admin_password or sec.generate_password()
        users.create(session, SYSTEM, username=FIRST_ADMIN, role="admin", password=password)
    return FirstAdmin(FIRST_ADMIN, password, generated=settings.admin_password is None)


def load_registry() -> Registry:
    """Every installed kind, from entry points; a duplicate kind raises (start-up error)."""
    return Registry.load()


@dataclass
class Server:
    """Every long-lived part, built by ``build``; ``start`` and ``stop`` run them."""

    settings: Settings
    db: Database
    registry: Registry
    engine: Engine
    compose: ComposeRunner
    locks: WorkloadLocks
    views: WorkloadViews
    queue: DeployQueue
    reconciler: Reconciler
    deployer: Deployer
    runner: TriggerRunner
    snapshotter: Snapshotter
    restorer: RestoreEngine
    copier: Copier
    cloner: Cloner
    drills: DrillRunner
    recovery_points: RecoveryPoints
    backups: BackupRunner

    proxy: Router | None = None
    """Caddy, when MOORAGE_PROXY=caddy (SPEC section 12)."""
    rollbacks: Rollback | None = None
    """Rollbacks with data (SPEC section 10): a restore, then the deploy."""

    def start(self) -> None:
        """Start-up recovery, in order, then the background threads. Runs before the
        first request is served:

        1. drop the volume pins of containers that went away while Moorage was down;
        2. fail captures (and pre-restore packs) a crash cut off;
        3. decide cut-off restores' volumes (roll forward or back by the journal), and
           finish or drop cut-off clones' data (``Cloner.recover``); fail cut-off
           drills and remove their sandboxes (``DrillRunner.recover``); settle cut-off
           recovery points from their parts (``RecoveryPoints.recover``); remove the
           scratch of instance backups a crash cut off (``BackupRunner.recover``);
        4. mark deploys a crash cut off ``interrupted``;
        5. start the deploy workers, then the reconciler (it revives whatever a capture
           or restore left stopped);
        6. redeploy what the recovered restores stopped, health-checked;
        7. start the trigger runner;
        8. start the proxy (Caddy) with the routes the database holds.
        The off-site copier puts copies a crash cut off back to pending with step 3,
        and starts after the trigger runner.
        """
        self.prune_pins()
        self.snapshotter.recover()
        self.restorer.recover()
        self.copier.recover()
        self.cloner.recover()
        self.drills.recover()
        self.recovery_points.recover()
        self.backups.recover()
        self.queue.recover_interrupted()
        self.queue.start()
        self.reconciler.start()
        self.restorer.resume()
        self.runner.start()
        self.copier.start()
        if self.proxy is not None:
            self.proxy.start()

    def stop(self) -> None:
        """Stop the trigger runner, then the workers and the reconciler."""
        if self.proxy is not None:
            self.proxy.stop()
        self.runner.stop()
        self.backups.stop()
        self.drills.stop()
        self.copier.stop()
        self.queue.stop()
        self.reconciler.stop()

    def prune_pins(self) -> None:
        """Drop volume pins whose containers are gone; an unreachable engine only logs."""
        try:
            pruned = self.engine.prune_pins()
        except MoorageError as exc:
            log.warning("could not prune volume pins: %s", exc.message)
            return
        if pruned:
            log.info("dropped the volume pins of %d containers that are gone", len(pruned))


def docker_engine(settings: Settings) -> Engine:
    """The Docker engine at ``DOCKER_HOST``; it connects lazily, so a server starts with
    no engine running."""
    from moorage.runtime.docker import DockerEngine
    from moorage.runtime.pins import Pins

    return DockerEngine(settings.docker_host, pins=Pins(settings.run_dir, str(settings.data_dir)))


def build(
    settings: Settings,
    db: Database,
    registry: Registry,
    engine: Engine,
    *,
    compose: ComposeRunner | None = None,
    fault: Callable[[str], None] | None = None,
) -> Server:
    """Wire every part over one store, one registry, one engine and one lock table.
    ``fault`` replaces the fault points (``faults.FaultPoints``) in tests."""
    compose = compose or ComposeRunner(settings.docker_host)
    fault = fault or FaultPoints(settings)
    locks = WorkloadLocks()
    views = WorkloadViews(settings, engine, compose, fault)
    proxy = Router(settings, db, engine) if settings.proxy == "caddy" else None
    if proxy is not None:
        views.route_to = proxy.switch  # a deploy's switch (SPEC section 12)
        views.route_hold = proxy.hold  # a compose deploy's hold
    reconciler = Reconciler(settings, db, registry, engine, views, locks)
    queue = DeployQueue(settings, db, registry, views, locks, reconciler.observe)
    deployer = Deployer(db, registry, engine, locks, views, queue, reconciler)
    snapshotter = Snapshotter(settings, db, engine, views, locks, fault)
    queue.checkpoint = Checkpointer(db, registry, snapshotter)  # before-deploy (SPEC 10)
    copier = Copier(settings, db, registry, fault)
    snapshotter.on_ready = copier.wake
    drill_runner = DrillRunner(settings, db, registry, engine, views, fault, copier.fetch)
    backups = BackupRunner(settings, db, registry)
    tools = RestoreTools(
        settings, db, registry, engine, views, locks, fault, queue.redeploy, copier.fetch
    )
    return Server(
        settings=settings,
        db=db,
        registry=registry,
        engine=engine,
        compose=compose,
        locks=locks,
        views=views,
        queue=queue,
        reconciler=reconciler,
        deployer=deployer,
        runner=TriggerRunner(
            db,
            registry,
            engine,
            views,
            wake=queue.wake,
            on_snapshot=snapshotter.start,
            on_drill=drill_runner.start,
            on_backup=backups.start,
        ),
        snapshotter=snapshotter,
        restorer=(restorer := RestoreEngine(tools)),
        rollbacks=Rollback(db, deployer, restorer),
        copier=copier,
        proxy=proxy,
        cloner=Cloner(settings, db, registry, locks, copier.fetch, fault),
        drills=drill_runner,
        recovery_points=RecoveryPoints(db, engine, views, locks, snapshotter, restorer, fault),
        backups=backups,
    )


def serve_parts(settings: Settings) -> tuple[Server, FirstAdmin | None]:
    """What ``moorage serve`` runs: the store opened and migrated, the first admin made
    when there is none, and every part built over the Docker engine."""
    registry = load_registry()
    db = open_store(settings)
    first = ensure_first_admin(settings, db)
    return build(settings, db, registry, docker_engine(settings)), first
