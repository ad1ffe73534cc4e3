"""The restore run (SPEC section 6, steps 1 to 7): ``RestoreEngine`` takes a request and
carries it out under the workload's deploy lock.

    request   single-flight (409 ``restore_running``), pre-flight, a ``restores`` row
    run       pre-flight again -> checksum -> extract beside each target (the workload
              still serves) -> journal ``prepared`` -> stop the containers -> swap each
              volume -> journal ``committed`` -> redeploy the last good artifact,
              health-checked -> ``succeeded``; then, outside the lock, pack
    recover   at start-up, before serving: the sweep in ``recovery``; ``resume`` then
              brings the recovered workloads up once the deployer runs

Only the journal writes, the stop, the renames and the redeploy happen while the
workload is down, so the downtime does not grow with the data. It must never touch
a volume before its journal is on disk, never take a target path from a manifest,
and never run anything but the last successful deployment's artifact.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from moorage.errors import Conflict, MoorageError
from moorage.names import new_id
from moorage.runtime.engine import LABEL_WORKLOAD
from moorage.security.roles import Actor
from moorage.services import restore_runs
from moorage.services import snapshots as snapshot_service
from moorage.snapshots.archive import Limits, read_archive
from moorage.snapshots.restore import journal, pack, preflight, recovery
from moorage.snapshots.restore.journal import Record, VolumeStep
from moorage.snapshots.restore.preflight import VolumePlan
from moorage.snapshots.restore.swap import converge, fsync_dir, inode
from moorage.snapshots.restore.tools import RestoreTools
from moorage.store.states import RestorePhase, RestoreStatus, SnapshotStatus

log = logging.getLogger("moorage.restore")
PROGRESS_EVERY = 0.5
HASH_CHUNK = 1024 * 1024
INTERNAL_ERROR = "internal error; see the server log"


class RestoreEngine:
    """The one owner of the restore sequence; the API and the lifespan call it."""

    def __init__(self, tools: RestoreTools) -> None:
        self.tools = tools
        self.db = tools.db
        self.settings = tools.settings
        self._guard = threading.Lock()
        self._active: set[str] = set()
        self._recovered: list[Record] = []

    # --- the request: single-flight, pre-flight, a row ------------------------

    def request(
        self,
        s: Session,
        actor: Actor,
        workload_id: str,
        snapshot_id: str,
        volumes: list[str] | None,
    ) -> restore_runs.Restore:
        """Accept a restore (the caller commits, then calls ``start``) or refuse it with
        nothing touched: 404, 409 ``not_ready``/``restore_running``, and every pre-flight
        refusal (``preflight.plan``). Writes the row and one ``snapshot.restore`` audit row."""
        snap = snapshot_service.get(s, workload_id, snapshot_id)
        if snap.status != SnapshotStatus.READY:
            raise Conflict(f"snapshot {snapshot_id} is {snap.status}, not ready", code="not_ready")
        with self._guard:
            self.check_free(s, workload_id)
            restore_id = new_id("rs")
            plans = preflight.plan(self.tools, s, workload_id, snap.manifest, volumes, restore_id)
            row = restore_runs.create(
                s,
                actor,
                restore_id,
                workload_id,
                snapshot_id,
                [p.name for p in plans],
                sum(int(v.get("bytes", 0)) for v in (snap.manifest or {}).get("volumes", [])),
            )
            self._active.add(workload_id)
        return row

    def check_free(self, s: Session, workload_id: str) -> None:
        """409 ``restore_running`` while a restore of the workload is accepted or running.
        The route asks before it waits for the workload's lock (which the running restore
        holds), so a second request is refused at once; ``request`` asks again under it."""
        if workload_id in self._active or restore_runs.running(s, workload_id) is not None:
            raise Conflict(
                "another restore of this workload is running; wait for it",
                code="restore_running",
            )

    def get(self, s: Session, workload_id: str, restore_id: str) -> restore_runs.Restore:
        """The restore row of that workload; 404 otherwise (``restore_runs.get``)."""
        return restore_runs.get(s, workload_id, restore_id)

    def forget(self, workload_id: str) -> None:
        """Release single-flight for a request whose row never committed."""
        with self._guard:
            self._active.discard(workload_id)

    # --- the run ------------------------------------------------------------------

    def start(self, restore_id: str) -> None:
        """Run an accepted (committed) restore on a thread of its own."""
        threading.Thread(
            target=self.run, args=(restore_id,), name=f"restore-{restore_id}", daemon=True
        ).start()

    def run(self, restore_id: str) -> None:
        """Carry out an accepted restore to its end, then pack the replaced data. A restore
        whose row is gone (its workload deleted while it waited for the lock, the delete
        taking the row with it) ends there: there is nothing left to restore into."""
        with self.db.session() as s:
            row = restore_runs.find(s, restore_id)
            workload_id = row.workload_id if row is not None else None
        if workload_id is None:
            self._gone(restore_id)
            return
        packing = None
        try:
            with self.tools.locks.hold(workload_id, timeout=recovery.LOCK_WAIT_SECONDS):
                with self.db.session() as s:
                    if restore_runs.find(s, restore_id) is None:
                        self._gone(restore_id)
                        return
                try:
                    packing = self._run_locked(restore_id)
                except Exception:
                    log.exception("restore %s crashed", restore_id)
                    packing = recovery.after_error(self.tools, restore_id)
                    self._finish(
                        restore_id, RestoreStatus.FAILED, "internal error; see the server log"
                    )
        except Conflict as exc:  # the lock stayed taken for an hour
            self._finish(restore_id, RestoreStatus.FAILED, exc.message)
        finally:
            with self._guard:
                self._active.discard(workload_id)
        if packing is not None:
            # The restore is done; packing the replaced data does not hold anything up.
            pack.pack_logged(self.tools, packing)

    @staticmethod
    def _gone(restore_id: str) -> None:
        log.info("restore %s: its workload was deleted before it ran; nothing to do", restore_id)

    def _run_locked(self, restore_id: str) -> Record | None:
        fault = self.tools.fault
        with self.db.session() as s:
            row = restore_runs.load(s, restore_id)
            snap = restore_runs.ready_snapshot(s, restore_id)
            if snap is None:
                restore_runs.refuse(s, restore_id, "the snapshot is gone")
                return None
            try:
                plans = preflight.plan(
                    self.tools, s, row.workload_id, snap.manifest, list(row.volumes), restore_id
                )
                mode = preflight.swap_mode(self.settings, plans)
            except MoorageError as exc:
                restore_runs.refuse(s, restore_id, exc.message)
                return None
            view = self.tools.views.view(s, row.workload_id)
            archive = snapshot_service.archive_path(self.settings, snap)
            expected_sha, expected_size = snap.sha256, snap.size
            manifest = dict(snap.manifest)
            staging = [str(p.staged) for p in plans] + [str(p.aside) for p in plans]
            restore_runs.prepare(s, restore_id, mode, staging)
        fault("restore.after_preflight")
        # Verify and extract while the workload keeps running.
        self._phase(restore_id, RestorePhase.VERIFY)
        try:
            if not archive.exists() and self.tools.fetch is not None:
                # The local archive is gone: a verified off-site copy comes back first,
                # checked against the recorded size and SHA-256 (SPEC section 11).
                self.tools.fetch(snap.id, archive)
            verify_archive(archive, expected_sha, expected_size)
            self._extract(restore_id, archive, plans, manifest)
            engine = self.tools.engine
            running = [c for c in engine.containers({LABEL_WORKLOAD: view.id}) if c.running]
        except MoorageError as exc:
            self._discard_staging(plans, restore_id)
            self._finish(restore_id, RestoreStatus.FAILED, exc.message)
            return None
        except BaseException:
            self._discard_staging(plans, restore_id)
            raise
        fault("restore.after_extract")
        for p in plans:
            if not p.live.exists():
                p.live.mkdir(parents=True)  # the target had no data yet: an empty "before"
                fsync_dir(p.live.parent)
        record = Record(
            restore=restore_id,
            workload=view.id,
            snapshot=snap.id,
            state=journal.PREPARED,
            swap=mode,
            containers=[c.id for c in running],
            volumes=[_step(p) for p in plans],
        )
        journal.write(self.settings.journals_dir, record)
        shutil.rmtree(recovery.scratch_dir(self.tools, restore_id), ignore_errors=True)
        fault("restore.after_journal")
        try:
            self._phase(restore_id, RestorePhase.QUIESCE)
            stop_timeout = int(view.config.get("stop_timeout", 10))
            for c in running:
                engine.stop(c.id, stop_timeout)
            fault("restore.after_quiesce")
            self._phase(restore_id, RestorePhase.SWAP)
            for n, v in enumerate(record.volumes):
                converge(
                    v.live, v.new_inode, v.old_inode, v.spares, use_exchange=record.use_exchange
                )
                fault(f"restore.after_swap.{n}")
            fault("restore.after_swaps")
        except Exception as exc:
            reason = exc.message if isinstance(exc, MoorageError) else str(exc)
            log.warning("restore %s: rolling back: %s", restore_id, reason)
            recovery.undo(self.tools, record, f"rolled back: {reason}")
            return None
        record.state = journal.COMMITTED
        journal.write(self.settings.journals_dir, record)
        self._phase(restore_id, RestorePhase.REDEPLOY)
        recovery.bring_up(self.tools, record)
        fault("restore.after_redeploy")
        self._finish(restore_id, RestoreStatus.SUCCEEDED)
        return record

    def _phase(self, restore_id: str, phase: RestorePhase, **values: Any) -> None:
        with self.db.session() as s:
            restore_runs.set_phase(s, restore_id, phase, **values)

    def _finish(self, restore_id: str, status: RestoreStatus, error: str | None = None) -> None:
        """End a still-running row (``restore_runs.finish``)."""
        with self.db.session() as s:
            restore_runs.finish(s, restore_id, status, error)

    def _extract(
        self, restore_id: str, archive: Path, plans: list[VolumePlan], manifest: dict[str, Any]
    ) -> None:
        """Extract into staging beside each target; volumes not restored go to scratch."""
        self._phase(restore_id, RestorePhase.EXTRACT)
        staging: dict[int, Path] = {}
        for p in plans:
            p.staged.mkdir()
            staging[p.index] = p.staged
        scratch = recovery.scratch_dir(self.tools, restore_id)
        for v in manifest.get("volumes", []):
            if int(v["index"]) not in staging:
                folder = scratch / str(v["index"])
                folder.mkdir(parents=True)
                staging[int(v["index"])] = folder
        last = 0.0

        def progress(done: int) -> None:
            nonlocal last
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                self._phase(restore_id, RestorePhase.EXTRACT, progress_bytes=done)

        with open(archive, "rb") as src:
            read_archive(
                src,
                limits=Limits(max_bytes=self.settings.snapshot_max_bytes),
                staging=staging,
                progress=progress,
            )
        self._phase(
            restore_id,
            RestorePhase.EXTRACT,
            progress_bytes=sum(int(v.get("bytes", 0)) for v in manifest.get("volumes", [])),
        )

    def _discard_staging(self, plans: list[VolumePlan], restore_id: str) -> None:
        for p in plans:
            if p.staged.exists():
                shutil.rmtree(p.staged, ignore_errors=True)
        shutil.rmtree(recovery.scratch_dir(self.tools, restore_id), ignore_errors=True)

    # --- start-up -----------------------------------------------------------------

    def recover(self) -> list[str]:
        """At start-up, before serving: decide every unfinished restore's volumes and rows
        (``recovery.recover``). Returns the restore ids it settled."""
        self._recovered = recovery.recover(self.tools)
        return [r.restore for r in self._recovered]

    def resume(self) -> None:
        """Once the deployer runs: bring the recovered workloads up (health-checked) and
        pack or drop what their restores left, on a background thread."""
        records, self._recovered = self._recovered, []
        if records:
            threading.Thread(
                target=recovery.follow_up,
                args=(self.tools, records),
                name="restore-recovery",
                daemon=True,
            ).start()


def _step(p: VolumePlan) -> VolumeStep:
    old, new = inode(p.live), inode(p.staged)
    assert old is not None and new is not None
    return VolumeStep(
        index=p.index,
        name=p.name,
        scope=p.scope,
        source=p.source,
        live=p.live,
        staged=p.staged,
        aside=p.aside,
        old_inode=old,
        new_inode=new,
    )


def verify_archive(archive: Path, sha256: str, size: int) -> None:
    """Refuse (409) an archive that is missing or does not match its size and SHA-256."""
    try:
        actual = archive.stat().st_size
    except FileNotFoundError:
        raise Conflict("the snapshot's archive is missing", code="archive_missing") from None
    digest = hashlib.sha256()
    with open(archive, "rb") as src:
        while chunk := src.read(HASH_CHUNK):
            digest.update(chunk)
    if actual != size or digest.hexdigest() != sha256:
        raise Conflict(
            "the archive does not match its recorded size and SHA-256; it was "
            "changed or damaged, so Moorage will not restore it",
            code="checksum_mismatch",
        )
