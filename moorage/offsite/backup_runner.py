"""Scheduled instance backups (SPEC section 11): what a ``schedule`` trigger with action
``backup`` does when it fires.

The trigger runner hands the trigger's id to ``BackupRunner.start`` after the slot is
claimed; the backup runs on a thread of its own (``instance-backup``), one at a time: a
firing while one still runs is logged and skipped (the next slot takes it). A run opens
the schedule's target, makes and verifies a bundle (``instance.create``), then keeps the
newest ``keep_last`` bundles there (``instance.prune``, default
``schedule.KEEP_BACKUPS``). Every run leaves one audit row by the trigger:
``instance.backup`` (key, size, pruned keys) or ``instance.backup_failed`` (the error's
code and message), and ``/metrics`` counts results and holds the time of each target's
last good backup (``moorage_instance_backup_last_success_timestamp_seconds``), so an
alert can fire on a backup that stopped succeeding.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moorage.errors import MoorageError
from moorage.metrics import INSTANCE_BACKUP_LAST, INSTANCE_BACKUPS
from moorage.offsite import instance
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import offsite, trigger_state
from moorage.services.firing import trigger_actor
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.triggers.schedule import KEEP_BACKUPS

log = logging.getLogger("moorage.offsite")


@dataclass(frozen=True)
class Outcome:
    """One run: the bundle's key and the keys pruned, or the error."""

    key: str | None
    pruned: list[str]
    error: MoorageError | OSError | None = None


class BackupRunner:
    """Runs the instance backups schedules ask for, one at a time, each on its thread."""

    def __init__(self, settings: Settings, db: Database, registry: Registry) -> None:
        self.settings, self.db, self.registry = settings, db, registry
        self._running = threading.Lock()
        self._thread: threading.Thread | None = None

    def recover(self) -> None:
        """At start-up: remove the scratch folders of bundles a crash cut off, and of an
        instance restore that was stopped (they hold a plaintext copy of the store and the
        instance key)."""
        for leftover in self.settings.data_dir.glob(".backup-*"):
            shutil.rmtree(leftover, ignore_errors=True)
            log.info("removed %s, left by an instance backup a crash cut off", leftover)
        instance.recovering(self.settings.data_dir)

    def start(self, trigger_id: str) -> bool:
        """Back up for the schedule ``trigger_id`` on a new thread; False (and nothing
        runs) while another backup still runs."""
        if not self._running.acquire(blocking=False):
            log.warning("an instance backup still runs; schedule %s skips this slot", trigger_id)
            return False

        def body() -> None:
            try:
                self.run(trigger_id)
            finally:
                self._running.release()

        self._thread = threading.Thread(target=body, name="instance-backup", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Wait up to ``timeout`` s for a running backup (its bundle only counts once its
        metadata is written, so one cut off here is never a complete bundle)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, trigger_id: str) -> Outcome | None:
        """One backup for the schedule ``trigger_id``, recorded; None when the schedule is
        gone. Errors are the outcome, never raised."""
        with self.db.session() as s:
            trigger = trigger_state.find(s, trigger_id)
            if trigger is None:
                return None
            config: dict[str, Any] = dict(trigger.config)
            actor = trigger_actor(trigger)
            target_id = str(config.get("target_id"))
            keep = int(config.get("keep_last") or KEEP_BACKUPS)
            try:
                target = offsite.opened(s, self.settings, target_id)
            except MoorageError as exc:
                return self._record_failure(trigger_id, actor, target_id, exc)
        try:
            store = self.registry.storage_kind(target.kind).open(target.config)
            try:
                made = instance.create(
                    self.settings, store, target.recipient, target.identity, datetime.now(UTC)
                )
                pruned = instance.prune(store, keep, instance.instance_tag(self.settings))
            finally:
                store.close()
        except (MoorageError, OSError) as exc:
            return self._record_failure(trigger_id, actor, target_id, exc)
        except Exception as exc:  # a bug: still one row, so the failure is seen
            log.exception("instance backup to %s", target_id)
            return self._record_failure(trigger_id, actor, target_id, OSError(str(exc)))
        with self.db.session() as s:
            more = {"pruned": pruned, "trigger": trigger_id}
            offsite.record_backup(s, actor, target_id, made.key, made.size, more)
        INSTANCE_BACKUPS.labels("verified").inc()
        INSTANCE_BACKUP_LAST.labels(target_id).set(time.time())
        log.info("instance backup %s on %s (%d pruned)", made.key, target.name, len(pruned))
        return Outcome(made.key, pruned)

    def _record_failure(
        self,
        trigger_id: str,
        actor: Actor,
        target_id: str,
        exc: MoorageError | OSError,
    ) -> Outcome:
        message = exc.message if isinstance(exc, MoorageError) else str(exc)
        code = exc.code if isinstance(exc, MoorageError) else "os_error"
        log.warning("instance backup to %s failed: %s", target_id, message)
        INSTANCE_BACKUPS.labels("failed").inc()
        with self.db.session() as s:
            offsite.record_backup_failed(s, actor, target_id, trigger_id, code, message)
        return Outcome(None, [], exc)
