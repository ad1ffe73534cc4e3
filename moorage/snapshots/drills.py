"""Restore drills (SPEC section 10): ``DrillRunner`` proves a snapshot restores by doing it,
in a sandbox, on a bounded pool of worker threads.

    extract   verify the archive (size, SHA-256; a missing one comes back from a verified
              off-site copy first), unpack it into ``<data>/drills/<id>/``
    start     the kind runs its deployed artifact there (``Sandboxed.start_sandbox``):
              own container names and network, no published port, the restored copies
              mounted in place of the live volumes
    check     the asked check (HTTP through ``wget`` in the container, or a command), or
              the workload's own health check (``Sandboxed.sandbox_healthy``)
    cleanup   whatever happened: every container, network and (a stack's) named volume
              labelled with the drill, and the unpacked data, removed
    done      ``passed`` (the snapshot's ``verified_at`` is set) or ``failed``, with the
              log and the check's output (marked: ``moorage.program_output``)

It never takes the workload's lock and never touches its containers, volumes or rows
(a deploy of the live workload runs meanwhile), and it never publishes a port.
``recover`` runs at start-up: a drill a crash cut off is failed and its sandbox removed.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from moorage import program_output
from moorage.deployer.views import WorkloadViews
from moorage.errors import DeployFailed, MoorageError
from moorage.plugins.registry import Registry
from moorage.plugins.spec import DeployContext, Sandbox, Sandboxed, drill_prefix
from moorage.runtime.engine import LABEL_DRILL, Engine, ExecTimedOut
from moorage.services import drills
from moorage.services import snapshots as snapshot_service
from moorage.settings import Settings
from moorage.snapshots.archive import Limits, read_archive
from moorage.snapshots.restore.run import verify_archive
from moorage.sources.stage import http_probe
from moorage.store.db import Database
from moorage.store.states import DrillPhase

log = logging.getLogger("moorage.drills")
WORKERS = 2
"""Drills at once; more wait their turn (each unpacks a whole snapshot and runs a copy)."""
CRASHED = "Moorage stopped during the drill; its sandbox was removed"
INTERNAL_ERROR = "internal error; see the server log"


class DrillRunner:
    """Runs accepted drills; built once by ``server.py``."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        engine: Engine,
        views: WorkloadViews,
        fault: Callable[[str], None],
        fetch: Callable[[str, Path], None] | None = None,
    ) -> None:
        self.fetch = fetch
        """``Copier.fetch``: a missing local archive back from a verified copy first."""
        self.settings = settings
        self.db = db
        self.registry = registry
        self.engine = engine
        self.views = views
        self.fault = fault
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="drill")

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "drills"

    def start(self, drill_id: str) -> None:
        """Queue an accepted (committed) drill on the pool."""
        self._pool.submit(self.run, drill_id)

    def run(self, drill_id: str) -> None:
        """Carry out one drill to its end; never raises."""
        try:
            self._run(drill_id)
        except Exception:
            log.exception("drill %s crashed", drill_id)
            self._end(drill_id, False, [], INTERNAL_ERROR)

    def _run(self, drill_id: str) -> None:
        lines: list[str] = []

        def say(line: str) -> None:
            lines.append(f"{datetime.now(UTC):%H:%M:%S} {line}")

        with self.db.session() as s:
            order = drills.order(s, drill_id)
            if order is None:
                return
            view = self.views.deployed_view(s, order.workload_id)
            snap = snapshot_service.get(s, order.workload_id, order.snapshot_id)
            archive = snapshot_service.archive_path(self.settings, snap)
            sha256, size, manifest = snap.sha256, snap.size, dict(snap.manifest)
        source = self.registry.source(view.kind)
        folder = self.root / drill_id
        sandbox = Sandbox(
            id=drill_id,
            network=drill_prefix(drill_id),
            labels={**self.settings.container_labels, LABEL_DRILL: drill_id},
            volumes=(),
        )
        passed, error = False, None
        try:
            self._phase(drill_id, DrillPhase.EXTRACT, lines, say, f"unpacking {snap.id}")
            if not archive.exists() and self.fetch is not None:
                say("the local archive is gone: fetching its verified off-site copy")
                self.fetch(order.snapshot_id, archive)
            verify_archive(archive, sha256, size)
            by_name = self._extract(archive, folder, manifest)
            mounts = []
            for v in view.volumes:
                path = by_name.get(v.name)
                if path is None:
                    path = folder / f"empty-{v.name}"
                    path.mkdir()
                    say(f"volume {v.name} is not in the snapshot: it starts empty")
                mounts.append(dataclasses.replace(v, host_path=path, base=folder))
            sandbox = dataclasses.replace(sandbox, volumes=tuple(mounts))
            if not isinstance(source, Sandboxed):
                raise DeployFailed(f"a {view.kind} workload cannot run in a sandbox")
            self._phase(drill_id, DrillPhase.START, lines, say, "starting the sandbox")
            ctx = self.views.context(view, log_line=say)
            ctx.labels = dict(sandbox.labels)
            containers = source.start_sandbox(ctx, sandbox)
            self.fault("drill.after_start")
            self._phase(drill_id, DrillPhase.CHECK, lines, say, "checking")
            if order.check.http is not None or order.check.exec is not None:
                said = self._check(ctx, order.check, containers)
            else:
                said = source.sandbox_healthy(ctx, sandbox, containers, order.check.timeout_s)
            say(f"check passed: {said}")
            passed = True
        except MoorageError as exc:
            error = exc.message
            say(f"failed: {exc.message}")
        finally:
            self._phase(drill_id, DrillPhase.CLEANUP, lines, say, "removing the sandbox")
            self.remove_sandbox(drill_id, say)
        self._end(drill_id, passed, lines, error)

    def _phase(
        self,
        drill_id: str,
        phase: DrillPhase,
        lines: list[str],
        say: Callable[[str], None],
        line: str,
    ) -> None:
        say(line)
        with self.db.session() as s:
            drills.set_phase(s, drill_id, phase, "\n".join(lines))

    def _end(self, drill_id: str, passed: bool, lines: list[str], error: str | None) -> None:
        with self.db.session() as s:
            drills.finish(s, drill_id, passed, "\n".join(lines), error)

    def _extract(self, archive: Path, folder: Path, manifest: dict[str, object]) -> dict[str, Path]:
        """Unpack every volume of the archive below ``folder``; answer name -> directory."""
        folder.mkdir(parents=True)
        staging: dict[int, Path] = {}
        names: dict[str, Path] = {}
        volumes = manifest.get("volumes", [])
        assert isinstance(volumes, list)
        for entry in volumes:
            index = int(entry["index"])
            staging[index] = folder / str(index)
            staging[index].mkdir()
            names[str(entry["name"])] = staging[index]
        with open(archive, "rb") as src:
            read_archive(
                src, limits=Limits(max_bytes=self.settings.snapshot_max_bytes), staging=staging
            )
        return names

    def _check(self, ctx: DeployContext, check: drills.Check, containers: dict[str, str]) -> str:
        """The asked check, retried until it passes or ``timeout_s`` ends; DeployFailed
        with how it last ended and, marked, what it printed otherwise."""
        service = check.service or ""
        container = containers.get(service)
        if container is None:
            known = ", ".join(sorted(k for k in containers if k)) or "none"
            raise DeployFailed(f"the sandbox has no service {service!r} (services: {known})")
        if check.http is not None:
            assert check.port is not None
            command, what = http_probe(check.port, check.http), f"GET {check.http}"
        else:
            assert check.exec is not None
            command, what = list(check.exec), f"`{' '.join(check.exec)}`"
        deadline = time.monotonic() + check.timeout_s
        last = ""
        while True:
            state = self.engine.get(container)
            if state is None or state.state in ("exited", "dead"):
                raise DeployFailed(f"the container stopped before the check passed; {last}")
            code, output = self._exec(container, command, deadline)
            said = f"{what}: exit {code}" if code is not None else f"{what}: did not end in time"
            printed = program_output.marked(output.strip()[-4000:])
            last = f"{said}; its output:\n{printed}" if printed else said
            if code == 0:
                return last
            if time.monotonic() >= deadline:
                raise DeployFailed(last)
            time.sleep(1)

    def _exec(self, container: str, command: list[str], deadline: float) -> tuple[int | None, str]:
        """``docker exec`` bounded by ``deadline``: ``(exit code, output)``, the code None
        for a command that did not end in time, a failed check (its process dies with the
        sandbox). The engine keeps only the output's last ``EXEC_KEEP`` bytes and stops
        reading at the deadline."""
        try:
            return self.engine.exec(
                container, command, timeout_s=max(1.0, deadline - time.monotonic())
            )
        except ExecTimedOut as exc:
            return None, exc.output

    def remove_sandbox(self, drill_id: str, say: Callable[[str], None] | None = None) -> None:
        """Remove the drill's containers, network, named volumes and unpacked data;
        idempotent."""
        try:
            for c in self.engine.containers({LABEL_DRILL: drill_id}):
                self.engine.remove(c.id)
                if say is not None:
                    say(f"removed {c.name}")
            self.engine.remove_network(drill_prefix(drill_id))
            self.engine.remove_network(f"moorage_drill_{drill_id}")  # named so before 2026-12
            for volume in self.engine.volumes({LABEL_DRILL: drill_id}):  # a stack's own
                self.engine.remove_volume(volume)
        except MoorageError as exc:
            log.warning("drill %s: removing its sandbox: %s", drill_id, exc.message)
        shutil.rmtree(self.root / drill_id, ignore_errors=True)

    def recover(self) -> None:
        """At start-up: fail every drill a crash cut off and remove its sandbox, and any
        unpacked data no running drill owns."""
        with self.db.session() as s:
            cut_off = drills.running(s)
        for drill_id in cut_off:
            self.remove_sandbox(drill_id)
            self._end(drill_id, False, [CRASHED], CRASHED)
        if self.root.is_dir():
            for leftover in self.root.iterdir():
                self.remove_sandbox(leftover.name)

    def stop(self) -> None:
        """Let running drills end; queued ones are dropped (``recover`` fails them)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
