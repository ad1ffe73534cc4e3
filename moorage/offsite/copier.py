"""The copier: one background worker that makes, verifies and prunes off-site copies.

Each pass (woken by a capture, by ``POST .../copies``, and every
``MOORAGE_OFFSITE_SECONDS`` as a catch-up):

1. ``services.offsite.schedule``: a pending copy for every ready snapshot of a workload
   with a policy that has none on the policy's target (and failed ones again, later);
2. one at a time, ``claim`` a pending copy and ``copy_one``: encrypt while uploading
   (``transfer.upload``), read back and verify the SHA-256 (``transfer.verify``), then
   write the metadata object (last: only now does the target count the copy as held),
   mark the row ``verified``; then apply the policy's retention on that target
   (``retention``: captures and deploy checkpoints counted apart, as locally; each
   copy's origin read from its metadata; what cannot be classified is kept);
3. set ``moorage_offsite_stale`` per policy.

Copies run one at a time: they share the uplink, and a single stream keeps memory flat.
``recover`` at start-up puts copies a crash cut off back to ``pending``; nothing they
wrote counts, and the next put of the same key replaces it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from moorage import metrics
from moorage.errors import MoorageError, TargetError
from moorage.offsite import layout, retention, transfer
from moorage.plugins.registry import Registry
from moorage.plugins.spec import TargetStore
from moorage.services import offsite
from moorage.services import snapshots as snapshot_service
from moorage.settings import Settings
from moorage.store.db import Database

log = logging.getLogger("moorage.offsite")
FAULT_AFTER_BYTES = 4 * 1024 * 1024
"""``offsite.mid_upload`` fires once this much ciphertext has gone to the target."""


class Copier:
    """The worker. ``clock`` is injectable so tests decide what "now" is (staleness)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        fault: Callable[[str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.fault = fault
        self.clock = clock
        self._wake = threading.Event()
        self._fetch_guard = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def recover(self) -> int:
        """Copies a crash cut off go back to ``pending``."""
        with self.db.session() as s:
            return offsite.recover(s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="offsite-copier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wake(self, _snapshot_id: str | None = None) -> None:
        """Run a pass now (a capture ended, or a copy was asked for)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_pass()
            except Exception:
                log.exception("the off-site pass failed; it runs again later")
            self._wake.wait(self.settings.offsite_seconds)

    def run_pass(self) -> int:
        """Schedule, then copy every pending copy; returns how many it tried."""
        with self.db.session() as s:
            offsite.schedule(s, self.clock())
        tried = 0
        while not self._stop.is_set():
            with self.db.session() as s:
                job = offsite.claim(s)
            if job is None:
                break
            tried += 1
            self.copy_one(job)
        self.observe_stale()
        return tried

    def observe_stale(self) -> None:
        with self.db.session() as s:
            found = offsite.stale(s, self.clock())
        metrics.OFFSITE_STALE.clear()
        for (workload_id, target_id), late in found.items():
            metrics.OFFSITE_STALE.labels(workload_id, target_id).set(1 if late else 0)

    def copy_one(self, job: offsite.Claimed) -> None:
        """Upload, verify, write the metadata, mark verified, prune; any failure marks the
        copy ``failed`` with its reason (and removes what it put)."""
        archive = snapshot_service.archive_path_for(self.settings, job.workload_id, job.snapshot_id)
        try:
            with self.db.session() as s:
                facts = offsite.facts(s, self.settings, job)
        except MoorageError as exc:
            with self.db.session() as s:
                offsite.failed(s, job.snapshot_id, job.target_id, exc.message)
            return
        faulted = False

        def progress(sent: int) -> None:
            nonlocal faulted
            if not faulted and sent >= FAULT_AFTER_BYTES:
                faulted = True
                self.fault("offsite.mid_upload")

        try:
            store = self.registry.storage_kind(facts.kind).open(facts.config)
        except Exception as exc:
            self._failed(job, facts, exc)
            return
        try:
            if self._copy(store, job, facts, archive, progress):
                try:
                    self._prune(store, job, facts)
                except Exception as exc:  # the copy is verified; retention runs next time
                    reason = exc.message if isinstance(exc, MoorageError) else repr(exc)
                    log.warning("retention on %s failed: %s", facts.target_name, reason)
        finally:
            store.close()

    def _copy(
        self,
        store: TargetStore,
        job: offsite.Claimed,
        facts: offsite.Facts,
        archive: Path,
        progress: Callable[[int], None],
    ) -> bool:
        """The copy itself; True when it verified."""
        committed = False
        try:
            size = transfer.upload(
                store,
                job.key,
                archive,
                facts.recipient,
                size=job.size,
                sha256=job.sha256,
                progress=progress,
            )
            committed = True  # from here a failure leaves an object that must go
            transfer.verify(store, job.key, facts.identity, size=job.size, sha256=job.sha256)
            now = self.clock()
            layout.write_meta(
                store,
                job.key,
                {**facts.meta, "copied_at": now.isoformat(), "ciphertext_size": size},
                facts.recipient,
            )
        except Exception as exc:
            if committed:
                self._forget(store, job.key)
            self._failed(job, facts, exc)
            return False
        with self.db.session() as s:
            offsite.verified(s, job.snapshot_id, job.target_id, size, now)
        metrics.OFFSITE_COPIES.labels("verified").inc()
        metrics.OFFSITE_BYTES.inc(size)
        return True

    def _failed(self, job: offsite.Claimed, facts: offsite.Facts, exc: Exception) -> None:
        reason = exc.message if isinstance(exc, MoorageError) else str(exc)
        if not isinstance(exc, (MoorageError, OSError)):
            log.error("copy of %s to %s crashed", job.snapshot_id, facts.target_name, exc_info=exc)
            reason = f"internal error ({type(exc).__name__}); see the server log"
        log.warning("copy of %s to %s failed: %s", job.snapshot_id, facts.target_name, reason)
        metrics.OFFSITE_COPIES.labels("failed").inc()
        with self.db.session() as s:
            offsite.failed(s, job.snapshot_id, job.target_id, reason)

    def fetch(self, snapshot_id: str, dest: Path) -> None:
        """Bring a snapshot's archive back from its verified copy to ``dest`` (for a restore
        whose local archive is gone): decrypted into a scratch file, its size and SHA-256
        checked against the snapshot's recorded ones, then renamed into place
        (``transfer.fetch``). Raises 409 ``archive_missing`` when no verified copy is
        known, ``TargetError`` (``copy_corrupt`` for a wrong key, a changed or cut byte;
        the copy is then ``failed``, as it is when the target no longer holds it, once a
        second read finds the same). Two fetches of one snapshot take turns; the second
        finds the archive in place and returns."""
        with self._fetching(snapshot_id):
            if dest.exists():
                return  # another fetch of it finished first (its checks passed)
            self._fetch(snapshot_id, dest)

    @contextmanager
    def _fetching(self, snapshot_id: str) -> Iterator[None]:
        with self._fetch_guard:
            lock = self._fetch_locks.setdefault(snapshot_id, threading.Lock())
        with lock:
            yield

    def _fetch(self, snapshot_id: str, dest: Path) -> None:
        with self.db.session() as s:
            source = offsite.source_of(s, self.settings, snapshot_id)
        log.info("fetching %s from %s (%s)", snapshot_id, source.target_name, source.key)
        store = self.registry.storage_kind(source.kind).open(source.config)
        try:
            transfer.fetch(
                store, source.key, source.identity, dest, size=source.size, sha256=source.sha256
            )
        except TargetError as exc:
            if exc.code in ("copy_corrupt", "target_object_missing") and self._broken(
                store, source
            ):
                with self.db.session() as s:
                    offsite.copy_broken(s, snapshot_id, source.target_id, exc.message)
            raise
        finally:
            store.close()

    def _broken(self, store: TargetStore, source: offsite.Source) -> bool:
        """Whether a second, whole read of the copy fails the same way: a connection cut
        mid-stream also reads as a cut (corrupt) copy, and must not demote a good one."""
        try:
            transfer.verify(
                store, source.key, source.identity, size=source.size, sha256=source.sha256
            )
        except TargetError as again:
            return again.code in ("copy_corrupt", "target_object_missing")
        except (MoorageError, OSError):
            return False
        return False

    def _forget(self, store: TargetStore, key: str) -> None:
        """Remove a copy that did not verify (metadata first), so nothing stays there
        that could later pass for it; a target gone meanwhile only logs."""
        try:
            store.delete(layout.meta_key(key))
            store.delete(key)
        except Exception as exc:  # the copy is already failed; this is tidying
            log.warning("could not remove the unverified copy %s: %s", key, exc)

    def _prune(self, store: TargetStore, job: offsite.Claimed, facts: offsite.Facts) -> None:
        """The policy's retention on the target, each copy's origin read from its metadata
        with the target's identity (``retention``: groups as local retention's)."""
        keep = facts.keep
        if keep is None or keep.unlimited:
            return
        gone = retention.apply(store, job.workload_id, keep, facts.identity)
        if gone:
            with self.db.session() as s:
                offsite.pruned(
                    s, job.workload_id, job.target_id, [h.snapshot_id for h in gone], keep
                )
