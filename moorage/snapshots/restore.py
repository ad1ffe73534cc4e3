"""The restore engine: the one place that owns the restore sequence of SPEC section 6.

A restore either leaves every volume exactly as it was, or every restored volume
exactly as in the snapshot, whatever happens; and the data it replaced is kept.

    request   single-flight, confirm, pre-flight (nothing touched on refusal)
    run       under the workload's deploy lock:
              pre-flight again -> checksum -> extract to staging beside each target
              (the workload still runs) -> journal "prepared" -> stop the containers
              -> swap each volume (RENAME_EXCHANGE or two renames) -> journal
              "committed" -> start the containers on the restored data
    pack      the replaced data -> a durable pre-restore snapshot -> removed -> journal gone
    recover   at start-up, before serving: each journal rolls forward (committed) or
              back (prepared), volume by volume by the inode now at the live path

It must never delete a directory it has not identified by inode, and never
trust a manifest's ``source``: targets come from the workload's current config.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from moorage.deployer.service import Deployer
from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound
from moorage.names import new_id
from moorage.runtime.engine import LABEL_WORKLOAD
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services import snapshots as snapshot_service
from moorage.snapshots import journal
from moorage.snapshots.archive import Limits, VolumeSource, read_archive, write_archive
from moorage.snapshots.swap import converge, fsync_dir, inode, supports_exchange
from moorage.store.tables import (
    Deployment,
    Project,
    Restore,
    Snapshot,
    Volume,
    Workload,
    utcnow,
)
from moorage.volumes.paths import VOLUME_SCOPES, host_path

log = logging.getLogger("moorage.restore")
LOCK_WAIT_SECONDS = 3600.0
PROGRESS_EVERY = 0.5
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class VolumePlan:
    index: int  # in the manifest
    name: str
    scope: str
    source: str
    live: Path
    staged: Path
    aside: Path


def _rmtree_if(path: Path, expected_inode: int | None) -> None:
    """Remove ``path`` only if it is the directory we think it is."""
    if expected_inode is not None and inode(path) == expected_inode:
        shutil.rmtree(path)
        fsync_dir(path.parent)


class RestoreEngine:
    def __init__(self, deployer: Deployer) -> None:
        self.deployer = deployer
        self.db = deployer.db
        self.settings = deployer.settings
        self._guard = threading.Lock()
        self._active: set[str] = set()

    # --- the request: single-flight, pre-flight, a row ------------------------

    def request(
        self, s: Any, actor: Actor, workload_id: str, snapshot_id: str, volumes: list[str] | None
    ) -> Restore:
        snap = snapshot_service.get(s, workload_id, snapshot_id)
        if snap.status != "ready":
            raise Conflict(f"snapshot {snapshot_id} is {snap.status}, not ready", code="not_ready")
        with self._guard:
            running = s.scalar(
                select(Restore.id).where(
                    Restore.workload_id == workload_id, Restore.status == "running"
                )
            )
            if workload_id in self._active or running is not None:
                raise Conflict(
                    "another restore of this workload is running; wait for it",
                    code="restore_running",
                )
            restore_id = new_id("rs")
            plans = self.preflight(s, workload_id, snap, volumes, restore_id)
            row = Restore(
                id=restore_id,
                workload_id=workload_id,
                snapshot_id=snapshot_id,
                status="running",
                phase="queued",
                volumes=[p.name for p in plans],
                total_bytes=sum(
                    int(v.get("bytes", 0)) for v in (snap.manifest or {}).get("volumes", [])
                ),
            )
            s.add(row)
            s.flush()
            audit.record(
                s,
                actor,
                "snapshot.restore",
                "workload",
                workload_id,
                {"restore": restore_id, "snapshot": snapshot_id, "volumes": row.volumes},
            )
            self._active.add(workload_id)
        return row

    def preflight(
        self, s: Any, workload_id: str, snap: Snapshot, volumes: list[str] | None, restore_id: str
    ) -> list[VolumePlan]:
        """All or nothing, from the workload's CURRENT config; touches nothing."""
        view = self.deployer.view(s, workload_id)
        if not self.deployer.registry.source(view.kind).supports_volumes:
            raise InvalidInput(
                f"a {view.kind} workload has no Moorage volumes to restore",
                code="volumes_unsupported",
            )
        manifest = snap.manifest or {}
        in_archive = {v["name"]: v for v in manifest.get("volumes", [])}
        wanted = list(in_archive) if volumes is None else volumes
        if not wanted or len(set(wanted)) != len(wanted) or not set(wanted) <= set(in_archive):
            raise InvalidInput(
                f"volumes must be distinct names among the snapshot's: {', '.join(in_archive)}",
                code="unknown_volume",
            )
        current = {v.name: v for v in view.volumes}
        plans = []
        for name in wanted:
            entry = in_archive[name]
            mount = current.get(name)
            if mount is None:
                raise Conflict(
                    f"volume {name!r} of the snapshot is not in the workload's current config",
                    code="volume_mismatch",
                )
            if mount.scope != entry.get("scope") or mount.scope not in VOLUME_SCOPES:
                raise Conflict(
                    f"volume {name!r} is {mount.scope} now but {entry.get('scope')} "
                    "in the snapshot",
                    code="volume_mismatch",
                )
            # Re-derive the target from current config; never from the manifest's source.
            live = host_path(
                data_dir=self.settings.data_dir,
                volume_roots=self.settings.volume_roots,
                project=view.project,
                stage=view.stage,
                scope=mount.scope,
                source=mount.source,
            )
            if os.path.ismount(live):
                raise Conflict(
                    f"volume {name!r}: {live} is a mount point; Moorage will not swap it",
                    code="mount_point",
                )
            if live.exists() and not live.is_dir():
                raise Conflict(f"volume {name!r}: {live} is not a directory", code="not_a_dir")
            parent = live.parent
            if mount.scope == "absolute" and not live.is_dir():
                raise Conflict(f"volume {name!r}: {live} does not exist", code="missing_target")
            if mount.scope != "absolute":
                parent.mkdir(parents=True, exist_ok=True)
            if live.exists() and os.stat(live).st_dev != os.stat(parent).st_dev:
                raise Conflict(
                    f"volume {name!r}: {live} is on another filesystem than its parent",
                    code="mount_point",
                )
            tag = f".moorage-restore-{restore_id}-{name}"
            plans.append(
                VolumePlan(
                    int(entry["index"]),
                    name,
                    mount.scope,
                    mount.source,
                    live,
                    parent / f"{tag}.new",
                    parent / f"{tag}.old",
                )
            )
        self._check_not_shared(s, workload_id, plans)
        self._check_space(plans, in_archive)
        self._swap_mode(plans)
        return plans

    def _check_not_shared(self, s: Any, workload_id: str, plans: list[VolumePlan]) -> None:
        """Refuse a target another workload also mounts: its containers keep running and
        would go on writing to the directory the swap moves aside."""
        rows = s.execute(
            select(
                Volume.workload_id,
                Volume.scope,
                Volume.source,
                Workload.stage,
                Workload.name,
                Project.slug,
            )
            .join(Workload, Workload.id == Volume.workload_id)
            .join(Project, Project.id == Workload.project_id)
            .where(Volume.workload_id != workload_id)
        ).all()
        mine = [(p, Path(os.path.realpath(p.live))) for p in plans]
        for other_id, scope, source, stage, name, project in rows:
            try:
                theirs = Path(
                    os.path.realpath(
                        host_path(
                            data_dir=self.settings.data_dir,
                            volume_roots=self.settings.volume_roots,
                            project=project,
                            stage=stage,
                            scope=scope,
                            source=source,
                        )
                    )
                )
            except MoorageError:
                continue
            for plan, real in mine:
                if theirs == real or theirs.is_relative_to(real) or real.is_relative_to(theirs):
                    raise Conflict(
                        f"volume {plan.name!r} ({real}) is also mounted by workload "
                        f"{name!r} ({other_id}) in {project}/{stage}; a restore would pull "
                        "the data from under it",
                        code="shared_volume",
                    )

    def _check_space(self, plans: list[VolumePlan], in_archive: dict[str, Any]) -> None:
        need: dict[int, list[int]] = {}
        for p in plans:
            dev = os.stat(p.live.parent).st_dev
            entry = in_archive[p.name]
            got = need.setdefault(dev, [0, 0, 0])
            got[0] += int(entry.get("bytes", 0)) + 4096 * int(entry.get("files", 0))
            got[1] += int(entry.get("files", 0)) + 64
            got[2] = dev
        for dev, (size, files, _) in need.items():
            folder = next(p.live.parent for p in plans if os.stat(p.live.parent).st_dev == dev)
            st = os.statvfs(folder)
            free, inodes = st.f_bavail * st.f_frsize, st.f_favail
            if free < size:
                raise Conflict(
                    f"{folder} has {free} bytes free; the restore needs {size}", code="no_space"
                )
            if st.f_files and inodes < files:
                raise Conflict(
                    f"{folder} has {inodes} free inodes; the restore needs {files}", code="no_space"
                )

    def _swap_mode(self, plans: list[VolumePlan]) -> str:
        forced = self.settings.restore_swap
        if forced == "rename":
            return "rename"
        ok = all(supports_exchange(p.live.parent) for p in plans)
        if forced == "exchange" and not ok:
            raise Conflict(
                "RENAME_EXCHANGE is not supported here; set MOORAGE_RESTORE_SWAP=auto",
                code="no_exchange",
            )
        return "exchange" if ok else "rename"

    # --- the run ------------------------------------------------------------------

    def start(self, restore_id: str) -> None:
        threading.Thread(
            target=self.run, args=(restore_id,), name=f"restore-{restore_id}", daemon=True
        ).start()

    def run(self, restore_id: str) -> None:
        with self.db.session() as s:
            row = s.get(Restore, restore_id)
            assert row is not None
            workload_id = row.workload_id
        packing = None
        try:
            with self.deployer.locks.hold(workload_id, timeout=LOCK_WAIT_SECONDS):
                packing = self._run_locked(restore_id)
        except Exception:
            log.exception("restore %s crashed", restore_id)
            self._settle_now(restore_id)
            self._finish(restore_id, "failed", "internal error; see the server log")
        finally:
            with self._guard:
                self._active.discard(workload_id)
        if packing is not None:
            # The restore is done; packing the replaced data does not hold anything up.
            self._pack_logged(packing)

    def _settle_now(self, restore_id: str) -> None:
        """After an unexpected error, do now what recovery would do at the next start."""
        try:
            for record in journal.read_all(self.settings.journals_dir):
                if record["restore"] != restore_id:
                    continue
                if record["state"] == "committed":
                    self.roll_forward(record)
                    self._pack_logged(record)
                else:
                    self.roll_back(record, "rolled back after an internal error")
        except Exception:
            log.exception("restore %s: settling failed; the next start recovers it", restore_id)

    def _phase(self, restore_id: str, phase: str, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(Restore).where(Restore.id == restore_id).values(phase=phase, **values))

    def _finish(self, restore_id: str, status: str, error: str | None = None) -> None:
        with self.db.session() as s:
            row = s.get(Restore, restore_id)
            if row is not None and row.status == "running":
                row.status, row.error, row.finished_at = status, error, utcnow()
                row.phase = "done"

    def _run_locked(self, restore_id: str) -> dict[str, Any] | None:
        fault = self.deployer.fault
        with self.db.session() as s:
            row = s.get(Restore, restore_id)
            assert row is not None
            snap = s.get(Snapshot, row.snapshot_id)
            if snap is None or snap.status != "ready":
                self._finish(restore_id, "failed", "the snapshot is gone")
                return None
            try:
                plans = self.preflight(s, row.workload_id, snap, list(row.volumes), restore_id)
                mode = self._swap_mode(plans)
            except MoorageError as exc:
                row.status, row.error, row.finished_at = "failed", exc.message, utcnow()
                return None
            view = self.deployer.view(s, row.workload_id)
            archive = snapshot_service.archive_path(self.settings, snap)
            expected_sha, expected_size = snap.sha256, snap.size
            manifest = dict(snap.manifest)
            row.swap = mode
            row.staging = [str(p.staged) for p in plans] + [str(p.aside) for p in plans]
        fault("restore.after_preflight")
        # Verify and extract while the workload keeps running.
        self._phase(restore_id, "verify")
        try:
            self._verify(archive, expected_sha, expected_size)
            scratch = self._extract(restore_id, archive, plans, manifest)
        except MoorageError as exc:
            self._discard_staging(plans, restore_id)
            self._finish(restore_id, "failed", exc.message)
            return None
        except BaseException:
            self._discard_staging(plans, restore_id)
            raise
        fault("restore.after_extract")
        engine = self.deployer.engine
        try:
            running = [c for c in engine.containers({LABEL_WORKLOAD: view.id}) if c.running]
        except MoorageError as exc:
            self._discard_staging(plans, restore_id)
            self._finish(restore_id, "failed", exc.message)
            return None
        for p in plans:
            if not p.live.exists():
                p.live.mkdir(parents=True)  # the target had no data yet: an empty "before"
                fsync_dir(p.live.parent)
        record: dict[str, Any] = {
            "restore": restore_id,
            "workload": view.id,
            "snapshot": snap.id,
            "state": "prepared",
            "swap": mode,
            "containers": [c.id for c in running],
            "volumes": [
                {
                    "index": p.index,
                    "name": p.name,
                    "scope": p.scope,
                    "source": p.source,
                    "live": str(p.live),
                    "staged": str(p.staged),
                    "aside": str(p.aside),
                    "old_inode": inode(p.live),
                    "new_inode": inode(p.staged),
                }
                for p in plans
            ],
        }
        journal.write(self.settings.journals_dir, restore_id, record)
        shutil.rmtree(scratch, ignore_errors=True)
        fault("restore.after_journal")
        try:
            self._phase(restore_id, "quiesce")
            stop_timeout = int(view.config.get("stop_timeout", 10))
            for c in running:
                engine.stop(c.id, stop_timeout)
            fault("restore.after_quiesce")
            self._phase(restore_id, "swap")
            for n, v in enumerate(record["volumes"]):
                converge(
                    Path(v["live"]),
                    v["new_inode"],
                    v["old_inode"],
                    [Path(v["staged"]), Path(v["aside"])],
                    use_exchange=mode == "exchange",
                )
                fault(f"restore.after_swap.{n}")
            fault("restore.after_swaps")
        except Exception as exc:
            reason = exc.message if isinstance(exc, MoorageError) else str(exc)
            log.warning("restore %s: rolling back: %s", restore_id, reason)
            self.roll_back(record, f"rolled back: {reason}")
            return None
        record["state"] = "committed"
        journal.write(self.settings.journals_dir, restore_id, record)
        self._phase(restore_id, "redeploy")
        self._start(record, f"restore:{restore_id}")
        fault("restore.after_redeploy")
        self._finish(restore_id, "succeeded")
        return record

    def _verify(self, archive: Path, sha256: str, size: int) -> None:
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

    def _extract(
        self, restore_id: str, archive: Path, plans: list[VolumePlan], manifest: dict[str, Any]
    ) -> Path:
        """Extract into staging beside each target; volumes not restored go to scratch."""
        self._phase(restore_id, "extract")
        staging: dict[int, Path] = {}
        for p in plans:
            p.staged.mkdir()
            staging[p.index] = p.staged
        scratch = self.settings.data_dir / "restore-scratch" / restore_id
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
                self._phase(restore_id, "extract", progress_bytes=done)

        try:
            with open(archive, "rb") as src:
                read_archive(
                    src,
                    limits=Limits(max_bytes=self.settings.snapshot_max_bytes),
                    staging=staging,
                    progress=progress,
                )
        finally:
            pass
        self._phase(
            restore_id,
            "extract",
            progress_bytes=sum(int(v.get("bytes", 0)) for v in manifest.get("volumes", [])),
        )
        return scratch

    def _discard_staging(self, plans: list[VolumePlan], restore_id: str) -> None:
        for p in plans:
            if p.staged.exists():
                shutil.rmtree(p.staged, ignore_errors=True)
        shutil.rmtree(self.settings.data_dir / "restore-scratch" / restore_id, ignore_errors=True)

    def _start(self, record: dict[str, Any], reason: str) -> None:
        """Start what ran before, on whatever data the volumes now hold; record it."""
        engine = self.deployer.engine
        started, errors = [], []
        for cid in record.get("containers", []):
            try:
                c = engine.get(cid)
                if c is not None and not c.running:
                    if c.state == "paused":
                        engine.unpause(cid)
                    else:
                        engine.start(cid)
                    started.append(c.name)
            except MoorageError as exc:
                errors.append(exc.message)
        with self.db.session() as s:
            s.add(
                Deployment(
                    id=new_id("dp"),
                    workload_id=record["workload"],
                    reason=reason,
                    status="failed" if errors else "succeeded",
                    artifact={},
                    log=f"{utcnow():%H:%M:%S} started {', '.join(started) or 'nothing'} on the "
                    "restored volumes\n" + "".join(f"error: {e}\n" for e in errors),
                    error="; ".join(errors) or None,
                    started_at=utcnow(),
                    finished_at=utcnow(),
                )
            )

    # --- rolling back, rolling forward, packing -----------------------------------

    def roll_back(self, record: dict[str, Any], reason: str) -> None:
        """Put every old directory back at its live path, drop the new data, start up."""
        for n, v in enumerate(record["volumes"]):
            spares = [Path(v["staged"]), Path(v["aside"])]
            converge(
                Path(v["live"]),
                v["old_inode"],
                v["new_inode"],
                spares,
                use_exchange=record["swap"] == "exchange",
            )
            self.deployer.fault(f"restore.recover.after_volume.{n}")
            for spare in spares:
                _rmtree_if(spare, v["new_inode"])
        self._start(record, f"restore:{record['restore']}")
        shutil.rmtree(
            self.settings.data_dir / "restore-scratch" / record["restore"], ignore_errors=True
        )
        with self.db.session() as s:
            row = s.get(Restore, record["restore"])
            if row is not None:
                row.status, row.error, row.finished_at, row.phase = (
                    "rolled_back",
                    reason,
                    utcnow(),
                    "done",
                )
        journal.remove(self.settings.journals_dir, record["restore"])

    def roll_forward(self, record: dict[str, Any]) -> None:
        for n, v in enumerate(record["volumes"]):
            converge(
                Path(v["live"]),
                v["new_inode"],
                v["old_inode"],
                [Path(v["staged"]), Path(v["aside"])],
                use_exchange=record["swap"] == "exchange",
            )
            self.deployer.fault(f"restore.recover.after_volume.{n}")
        self._start(record, f"restore:{record['restore']}")
        with self.db.session() as s:
            row = s.get(Restore, record["restore"])
            if row is not None and row.status == "running":
                row.status, row.finished_at, row.phase = "succeeded", utcnow(), "done"

    def pack(self, record: dict[str, Any]) -> None:
        """Keep the replaced data as a durable pre-restore snapshot, then remove it."""
        olds = []
        for v in record["volumes"]:
            holder = next(
                (Path(p) for p in (v["staged"], v["aside"]) if inode(Path(p)) == v["old_inode"]),
                None,
            )
            olds.append((v, holder))
        kept = record.get("pre_restore")
        if kept is not None:
            with self.db.session() as s:
                done = s.get(Snapshot, kept)
                if done is not None and done.status == "ready":
                    # Packed before a crash: only the removal of the old trees was left.
                    for v, holder in olds:
                        if holder is not None:
                            _rmtree_if(holder, v["old_inode"])
                    journal.remove(self.settings.journals_dir, record["restore"])
                    return
        if any(holder is not None for _, holder in olds):
            snapshot_id = new_id("sn")
            record["pre_restore"] = snapshot_id
            journal.write(self.settings.journals_dir, record["restore"], record)
            with self.db.session() as s:
                s.add(
                    Snapshot(
                        id=snapshot_id,
                        workload_id=record["workload"],
                        origin="pre-restore",
                        mode="stop",
                        status="capturing",
                        volumes=[v["name"] for v, h in olds if h is not None],
                    )
                )
                s.execute(
                    update(Restore)
                    .where(Restore.id == record["restore"])
                    .values(pre_restore_snapshot_id=snapshot_id)
                )
            sources = [
                VolumeSource(
                    index=i, name=v["name"], scope=v["scope"], source=v["source"], path=holder
                )
                for i, (v, holder) in enumerate((v, h) for v, h in olds if h is not None)
            ]
            dest = snapshot_service.archive_path_for(self.settings, record["workload"], snapshot_id)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with self.db.session() as s:
                view = self.deployer.view(s, record["workload"])
            written = write_archive(
                dest, {"id": view.id, "name": view.name, "kind": view.kind}, sources
            )
            with self.db.session() as s:
                snap = s.get(Snapshot, snapshot_id)
                if snap is not None:
                    snap.size, snap.sha256 = written.size, written.sha256
                    snap.manifest, snap.warnings = written.manifest, written.warnings
                    snap.progress_bytes = snap.total_bytes = sum(
                        v["bytes"] for v in written.manifest["volumes"]
                    )
                    snapshot_service.finish(s, snap, status="ready")
            for v, holder in olds:
                if holder is not None:
                    _rmtree_if(holder, v["old_inode"])
        journal.remove(self.settings.journals_dir, record["restore"])

    def recover(self) -> list[str]:
        """At start-up, before serving: finish or undo every restore a crash cut off."""
        done = []
        records = journal.read_all(self.settings.journals_dir)
        journaled = {record["restore"] for record in records}
        for record in records:
            try:
                if record["state"] == "committed":
                    self.roll_forward(record)
                    threading.Thread(target=self._pack_logged, args=(record,), daemon=True).start()
                else:
                    self.roll_back(
                        record,
                        "Moorage stopped before the restore committed; every volume is as it was",
                    )
                done.append(record["restore"])
            except Exception:
                log.exception(
                    "recovery of restore %s failed; it will be retried at the next start",
                    record.get("restore"),
                )
        with self.db.session() as s:
            for row in s.scalars(select(Restore).where(Restore.status == "running")):
                if row.id in journaled:
                    continue
                # Cut off before its journal: no volume was touched. Drop its staging.
                for path in row.staging:
                    if Path(path).name.startswith(f".moorage-restore-{row.id}-"):
                        shutil.rmtree(path, ignore_errors=True)
                shutil.rmtree(
                    self.settings.data_dir / "restore-scratch" / row.id, ignore_errors=True
                )
                row.status, row.finished_at, row.phase = "failed", utcnow(), "done"
                row.error = "Moorage stopped during the restore, before any volume was touched"
                done.append(row.id)
        return done

    def _pack_logged(self, record: dict[str, Any]) -> None:
        try:
            self.pack(record)
        except Exception:
            log.exception("packing the replaced data of restore %s failed", record["restore"])

    def get(self, s: Any, workload_id: str, restore_id: str) -> Restore:
        row: Restore | None = s.get(Restore, restore_id)
        if row is None or row.workload_id != workload_id:
            raise NotFound(f"no restore {restore_id!r} of workload {workload_id!r}")
        return row

    def forget(self, workload_id: str) -> None:
        """Release single-flight for a request whose row never committed."""
        with self._guard:
            self._active.discard(workload_id)
