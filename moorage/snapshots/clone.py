"""Restore into a new workload (SPEC section 10): ``Cloner`` unpacks a snapshot into the
directories of a clone (``services/clones.py`` decides and writes its rows).

    check     name, stage, a ready snapshot, the clone's volume paths empty (nothing written)
    extract   verify the archive, then unpack it beside each new path, as
              ``.moorage-clone-<token>-<volume>.new``; a note in ``<data>/clones/<token>.json``
              names every directory first
    commit    one guarded change: the workload, its env and volumes, (a deploy), one
              ``snapshot.clone`` audit row; the note names the workload before the commit
    move in   under the clone's lock, before any deploy may run: each staged tree is
              renamed to its path, then the note is removed

The source is only read: its rows, its archive file. Its containers, its volumes and its
lock are never touched, so a clone never blocks or changes it.

Crash safety (``recover``, at start-up): a note whose workload exists is moved in (what
the commit promised); any other note's staged trees are removed. A tree is moved only
onto a path that is missing or an empty directory, so nothing is ever overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from moorage.errors import Conflict, NotFound
from moorage.names import new_id
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import clones, deploys, guard, workloads
from moorage.services import snapshots as snapshot_service
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.snapshots.archive import Limits, read_archive
from moorage.snapshots.restore.run import verify_archive
from moorage.snapshots.restore.swap import fsync_dir
from moorage.store.db import Database

log = logging.getLogger("moorage.clone")


class Cloner:
    """Makes clones; built once by ``server.py``."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        locks: WorkloadLocks,
        fetch: Callable[[str, Path], None] | None = None,
        fault: Callable[[str], None] = lambda _name: None,
    ) -> None:
        self.fault = fault
        """Fault points ``clone.after_extract`` (staged, no row yet) and
        ``clone.after_commit`` (the row is in, the data not moved yet) for crash tests."""
        self.settings = settings
        self.db = db
        self.registry = registry
        self.locks = locks
        self.fetch = fetch
        """``Copier.fetch``: a missing local archive back from a verified copy first."""

    @property
    def notes_dir(self) -> Path:
        return self.settings.data_dir / "clones"

    def clone(
        self,
        session: Session,
        actor: Actor,
        workload_id: str,
        snapshot_id: str,
        *,
        name: str,
        stage: str | None,
        deploy: bool,
    ) -> str:
        """Make the clone and answer its id (committed, its data in place). Refuses with
        nothing written: 404, 409 ``not_ready``/``duplicate``/``volume_in_use``/
        ``checksum_mismatch``/``archive_missing``, 422 ``invalid_slug``/
        ``unknown_stage``/``volumes_unsupported``/``invalid_archive``, 403
        ``needs_admin`` (host powers, or an archive only an admin may read:
        ``services.snapshots.check_reader``)."""
        source = workloads.get(session, workload_id)
        chosen = clones.check(session, self.registry, source, name=name, stage=stage)
        clones.check_powers(session, actor, self.registry, self.settings, source)
        snap = clones.ready_snapshot(session, workload_id, snapshot_id)
        # What the archive holds is the clone's to read: only an admin clones what only an
        # admin may download, such as a volume that was ``absolute`` when captured (since
        # moved to a stage directory under the same name, an operator's clone held the
        # host directory's files: attacker pass H).
        snapshot_service.check_reader(session, actor, snap)
        planned = clones.plan(session, self.settings, source, snap, name=name, stage=chosen)
        archive = snapshot_service.archive_path(self.settings, snap)
        expected = (snap.sha256, snap.size, dict(snap.manifest))
        session.rollback()  # read only so far; no transaction is held while unpacking
        token = new_id("cl")
        staged = {v.spec.name: _staged(v.path, token, v.spec.name) for v in planned}
        note: dict[str, Any] = {
            "token": token,
            "workload": None,
            "moves": [[str(staged[v.spec.name]), str(v.path)] for v in planned],
        }
        self._write_note(note)
        committed: list[bool] = []

        def move_in() -> None:
            committed.append(True)
            self.fault("clone.after_commit")
            self._move_in(note)

        try:
            if not archive.exists() and self.fetch is not None:
                self.fetch(snapshot_id, archive)  # from a verified off-site copy (SPEC 11)
            verify_archive(archive, expected[0], expected[1])
            self._extract(archive, token, planned, staged, expected[2])
            self.fault("clone.after_extract")
            with ExitStack() as stack:
                with guard.change(
                    session, self.locks, actor, AuditAction.SNAPSHOT_CLONE, None
                ) as change:
                    source = workloads.get(session, workload_id)
                    snap = clones.ready_snapshot(session, workload_id, snapshot_id)
                    again = clones.plan(
                        session, self.settings, source, snap, name=name, stage=chosen
                    )
                    if [v.path for v in again] != [v.path for v in planned]:
                        raise Conflict(
                            "the source's volumes changed meanwhile; try again",
                            code="volume_mismatch",
                        )
                    made = clones.create(
                        session,
                        actor,
                        self.registry,
                        self.settings,
                        source,
                        snap,
                        name=name,
                        stage=chosen,
                        volumes=planned,
                    )
                    clone_id = made.id
                    stack.enter_context(self.locks.hold(clone_id))  # until moved in
                    if deploy:
                        deploys.deploy(session, actor, self.registry, self.settings, clone_id)
                    note["workload"] = clone_id
                    self._write_note(note)
                    change.then(move_in)
        except BaseException:
            if not committed:
                self._discard(note)
            else:  # the rows are in: the next start moves what is left (``recover``)
                log.exception("clone %s: moving its data in failed", note["workload"])
            raise
        return clone_id

    def _extract(
        self,
        archive: Path,
        token: str,
        planned: list[clones.ClonedVolume],
        staged: dict[str, Path],
        manifest: dict[str, Any],
    ) -> None:
        staging: dict[int, Path] = {}
        for v in planned:
            folder = staged[v.spec.name]
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
            if v.index is not None:
                staging[v.index] = folder
        scratch = self.notes_dir / token
        for entry in manifest.get("volumes", []):
            index = int(entry["index"])
            if index not in staging:  # the reader wants a directory for every volume
                staging[index] = scratch / str(index)
                staging[index].mkdir(parents=True)
        try:
            with open(archive, "rb") as src:
                read_archive(
                    src,
                    limits=Limits(max_bytes=self.settings.snapshot_max_bytes),
                    staging=staging,
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # --- the note -------------------------------------------------------------------

    def _note_path(self, token: str) -> Path:
        return self.notes_dir / f"{token}.json"

    def _write_note(self, note: dict[str, Any]) -> None:
        self.notes_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self._note_path(note["token"])
        tmp = final.with_suffix(".json.tmp")
        with open(tmp, "w") as out:
            json.dump(note, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, final)
        fsync_dir(self.notes_dir)

    def _move_in(self, note: dict[str, Any]) -> None:
        """Rename each staged tree to its path (missing or empty there), then drop the note."""
        for staged_path, live_path in note["moves"]:
            staged, live = Path(staged_path), Path(live_path)
            if staged.is_dir() and not staged.is_symlink():
                if live.is_dir() and not live.is_symlink() and not any(live.iterdir()):
                    live.rmdir()
                if not live.exists() and not live.is_symlink():
                    os.rename(staged, live)
                    fsync_dir(live.parent)
                else:
                    log.warning("clone %s: %s holds data; left %s", note["token"], live, staged)
        self._note_path(note["token"]).unlink(missing_ok=True)
        fsync_dir(self.notes_dir)

    def _discard(self, note: dict[str, Any]) -> None:
        for staged_path, _ in note["moves"]:
            if Path(staged_path).name.startswith(".moorage-clone-"):
                shutil.rmtree(staged_path, ignore_errors=True)
        shutil.rmtree(self.notes_dir / note["token"], ignore_errors=True)
        self._note_path(note["token"]).unlink(missing_ok=True)

    def recover(self) -> None:
        """At start-up: finish the clones whose rows committed, drop the others' trees."""
        if not self.notes_dir.is_dir():
            return
        for path in sorted(self.notes_dir.glob("cl_*.json")):
            try:
                note = json.loads(path.read_text())
                clone_id = note.get("workload")
                exists = clone_id is not None and self._exists(str(clone_id))
                if exists:
                    self._move_in(note)
                    log.info("clone %s: moved its data in after a restart", clone_id)
                else:
                    self._discard(note)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("clone note %s: %s; left alone", path.name, exc)

    def _exists(self, workload_id: str) -> bool:
        with self.db.session() as s:
            try:
                workloads.get(s, workload_id)
            except NotFound:
                return False
        return True


def _staged(path: Path, token: str, volume: str) -> Path:
    return path.parent / f".moorage-clone-{token}-{volume}.new"
