"""The trigger runner: fires timed triggers when due and asks polled triggers on their interval.

Firing a timed trigger compares-and-sets its ``next_run_at`` in the same
transaction that queues the deploys, so a restart, or two runners, can never
fire one slot twice. The catch-up rule: slots missed while Moorage was down
fire once, at start-up, and the next slot is computed from now. What a slot is
(across daylight-saving changes too) is the kind's to say; a trigger whose kind
finds no next slot stops being due (``next_run_at`` cleared) instead of failing
every tick and the triggers after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from moorage.deployer.views import WorkloadViews
from moorage.errors import MoorageError
from moorage.plugins.registry import Registry
from moorage.plugins.spec import PolledTrigger, TimedTrigger
from moorage.runtime.engine import Engine
from moorage.services import trigger_state
from moorage.services.firing import fire
from moorage.store.db import Database

log = logging.getLogger("moorage.triggers")


class TriggerRunner:
    """The ``trigger-runner`` thread: ``tick`` (timed triggers) and ``poll_due`` (polled
    ones) every half second. ``wake`` has the deploy workers look at the queue; a timed
    snapshot trigger's captures go to ``on_snapshot``, a drill trigger's drills to
    ``on_drill``, after their rows commit; a backup trigger's id goes to ``on_backup``."""

    def __init__(
        self,
        db: Database,
        registry: Registry,
        engine: Engine,
        views: WorkloadViews,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_snapshot: Callable[[str], None] | None = None,
        on_drill: Callable[[str], None] | None = None,
        on_backup: Callable[[str], object] | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.engine = engine
        self.views = views
        self.wake = wake
        self.on_snapshot = on_snapshot
        self.on_drill = on_drill
        self.on_backup = on_backup
        self.clock = clock
        self._polled_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="trigger-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                fired = self.tick()
                self.poll_due()
                if fired:
                    self.wake()
            except Exception:
                log.exception("trigger runner error")
            self._stop.wait(0.5)

    def _timed_kinds(self) -> list[str]:
        return [k for k, p in self.registry.triggers.items() if isinstance(p, TimedTrigger)]

    def tick(self) -> int:
        """Fire every timed trigger that is due; return how many deployments were queued."""
        now = self.clock()
        queued = 0
        with self.db.session() as s:
            due = trigger_state.due(s, self._timed_kinds(), now)
        for trigger in due:
            plugin = self.registry.triggers[trigger.kind]
            assert isinstance(plugin, TimedTrigger)
            with self.db.session() as s:
                try:
                    following = plugin.next_run(dict(trigger.config), now)
                except Exception as exc:  # one broken schedule must not stop the others
                    log.warning(
                        "schedule %s has no next firing (%s); it stays idle until its "
                        "config changes",
                        trigger.name,
                        exc,
                    )
                    trigger_state.idle(s, trigger.id, trigger.next_run_at)
                    continue
                fresh = trigger_state.claim_slot(s, trigger.id, trigger.next_run_at, following, now)
                if fresh is None:
                    continue  # another runner (or a config change) got there first
                action, mode = plugin.action(dict(fresh.config))
                if action == "snapshot":
                    captures = trigger_state.capture_bound(s, self.registry, fresh, mode)
                elif action == "drill":
                    captures = trigger_state.drill_bound(s, self.registry, fresh)
                elif action == "backup":
                    captures = [fresh.id]
                else:
                    queued += len(fire(s, fresh, at=now).deployments)  # the slot's instant
                log.info("schedule %s fired; next at %s", trigger.name, following.isoformat())
            if action == "snapshot" and self.on_snapshot is not None:
                for snapshot_id in captures:
                    self.on_snapshot(snapshot_id)  # after the commit: the row is there
            if action == "drill" and self.on_drill is not None:
                for drill_id in captures:
                    self.on_drill(drill_id)
            if action == "backup" and self.on_backup is not None:
                self.on_backup(trigger.id)
        return queued

    def poll_due(self) -> int:
        """Ask each polled trigger whose interval has passed; return deployments queued."""
        kinds = [k for k, p in self.registry.triggers.items() if isinstance(p, PolledTrigger)]
        with self.db.session() as s:
            triggers = trigger_state.of_kinds(s, kinds)
        queued = 0
        for trigger in triggers:
            plugin = self.registry.triggers[trigger.kind]
            assert isinstance(plugin, PolledTrigger)
            last = self._polled_at.get(trigger.id)
            if last is not None and time.monotonic() - last < plugin.interval(trigger.config):
                continue
            self._polled_at[trigger.id] = time.monotonic()
            queued += self.poll(trigger.id)
        return queued

    def poll(self, trigger_id: str) -> int:
        """Poll one trigger now for every bound workload; queue a pulling deploy on change."""
        with self.db.session() as s:
            trigger = trigger_state.find(s, trigger_id)
            if trigger is None:
                return 0
            plugin = self.registry.triggers[trigger.kind]
            assert isinstance(plugin, PolledTrigger)
            views = [self.views.view(s, w) for w in trigger_state.bound(s, trigger_id)]
            config = dict(trigger.config)
        changed: list[str] = []
        seen = {v.id: (v.artifact or {}).get("deployment") for v in views}
        for view in views:
            try:
                reason = plugin.poll(self.engine, config, view)
            except MoorageError as exc:  # EngineError included
                log.warning("poll of %s for %s: %s", trigger_id, view.name, exc.message)
                continue
            if reason is not None:
                log.info("%s: %s", view.name, reason)
                changed.append(view.id)
        if not changed:
            return 0
        # A deploy that finished while we asked the registry may already run the new digest.
        with self.db.session() as s:
            queued = trigger_state.fire_changed(s, trigger_id, changed, seen)
        if queued:
            self.wake()
        return len(queued)
