"""Settling a restore: roll back, roll forward, bring the workload up, and the start-up
sweep over unfinished journals (SPEC section 6, steps 6 to 8).

A journal that reached ``committed`` rolls forward, any other rolls back; each
volume is decided by the inode now at its live path (``swap.converge``), never by
replaying a step. Every function here is idempotent, so a crash inside one is
settled by running it again at the next start. The order is always: volumes,
then the row, then the workload brought up (the last good deployment, health-
checked), then the journal removed (for a committed restore, by ``pack``).

It must never delete a directory it has not identified by inode, never start
anything but the last good deployment's artifact, and never remove a journal
before everything the journal describes is done.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from moorage.services import restore_runs
from moorage.snapshots.restore import journal, pack
from moorage.snapshots.restore.journal import Record, Unreadable
from moorage.snapshots.restore.pack import remove_if
from moorage.snapshots.restore.swap import converge
from moorage.snapshots.restore.tools import RestoreTools

log = logging.getLogger("moorage.restore")
LOCK_WAIT_SECONDS = 3600.0
ROLLED_BACK_AT_START = "Moorage stopped before the restore committed; every volume is as it was"


def scratch_dir(tools: RestoreTools, restore_id: str) -> Path:
    """Where the volumes of the archive that are not restored are unpacked, then dropped."""
    return tools.settings.data_dir / "restore-scratch" / restore_id


def roll_back(tools: RestoreTools, record: Record, reason: str) -> None:
    """Put every replaced tree back at its live path, remove the restored trees (by inode)
    and the scratch, and mark the row ``rolled_back`` with ``reason``. Starts nothing and
    keeps the journal (``bring_up``, then ``close``)."""
    for n, v in enumerate(record.volumes):
        converge(v.live, v.old_inode, v.new_inode, v.spares, use_exchange=record.use_exchange)
        tools.fault(f"restore.recover.after_volume.{n}")
        for spare in v.spares:
            remove_if(spare, v.new_inode)
    shutil.rmtree(scratch_dir(tools, record.restore), ignore_errors=True)
    with tools.db.session() as s:
        restore_runs.rolled_back(s, record.restore, reason)


def roll_forward(tools: RestoreTools, record: Record) -> None:
    """Put every restored tree at its live path (the replaced ones stay beside it for
    ``pack``) and mark a still-running row ``succeeded``. Starts nothing."""
    for n, v in enumerate(record.volumes):
        converge(v.live, v.new_inode, v.old_inode, v.spares, use_exchange=record.use_exchange)
        tools.fault(f"restore.recover.after_volume.{n}")
    with tools.db.session() as s:
        restore_runs.rolled_forward(s, record.restore)


def bring_up(tools: RestoreTools, record: Record) -> str | None:
    """Under the workload's lock (re-entrant: the run already holds it), run the last
    successful deployment's artifact again, health-checked, on whatever data the
    volumes now hold (``Deployer.redeploy``). A never-deployed or stopped workload
    stays stopped. Returns the deployment row's id, or None when nothing was started;
    when the workload did not come up healthy, the restore row's error says so."""
    with tools.locks.hold(record.workload, timeout=LOCK_WAIT_SECONDS):
        deployment_id = tools.redeploy(record.workload, f"restore:{record.restore}")
    if deployment_id is None:
        return None
    with tools.db.session() as s:
        restore_runs.note_unhealthy(s, record.restore, deployment_id)
    return deployment_id


def close(tools: RestoreTools, record: Record) -> None:
    """End a settled restore: a committed one packs its replaced data (which removes the
    journal last); a rolled-back one just removes its journal."""
    if record.committed:
        pack.pack_logged(tools, record)
    else:
        journal.remove(tools.settings.journals_dir, record.restore)


def undo(tools: RestoreTools, record: Record, reason: str) -> None:
    """Roll back, bring up, close: the whole of a restore that failed before its commit."""
    roll_back(tools, record, reason)
    bring_up(tools, record)
    close(tools, record)


def discard_staging(tools: RestoreTools, restore_id: str, staging: list[str]) -> None:
    """Remove what a restore cut off before its journal created: only the paths on its
    row (``staging``) named after it, and its scratch. No volume was touched."""
    for path in staging:
        if Path(path).name.startswith(f".moorage-restore-{restore_id}-"):
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(scratch_dir(tools, restore_id), ignore_errors=True)


def after_error(tools: RestoreTools, restore_id: str) -> Record | None:
    """After an unexpected error in the run (the caller holds the lock), do now what the
    next start would: settle by the journal, or drop the staging when there is none.
    Returns a committed record whose replaced data is still to be packed. Never raises:
    what it cannot settle is left for the start-up sweep."""
    try:
        found = journal.read_one(tools.settings.journals_dir, restore_id)
        if isinstance(found, Unreadable):
            _note(tools, restore_id, _unreadable(found))
            return None
        if found is None:
            with tools.db.session() as s:
                staging = restore_runs.staging_of(s, restore_id)
            if staging is not None:
                discard_staging(tools, restore_id, staging)
            return None
        if not found.committed:
            undo(tools, found, "rolled back after an internal error")
            return None
        roll_forward(tools, found)
        bring_up(tools, found)
        return found
    except Exception:
        log.exception("restore %s: settling failed; the next start recovers it", restore_id)
        return None


def recover(tools: RestoreTools) -> list[Record]:
    """At start-up, before serving: decide the volumes of every unfinished restore.

    Each journal rolls forward (committed) or back, and its row says so; the records
    come back for ``follow_up``, which brings the workloads up and closes them once
    the engine and the deployer run. A journal that cannot be read, or whose
    restore cannot be settled, is left as it is (its row, still ``running``, says
    why and blocks another restore) and is tried again at the next start. A
    ``running`` row without a journal was cut off before it touched a volume: it
    is marked ``failed`` and its staging removed.
    """
    settled: list[Record] = []
    journaled: set[str] = set()
    for item in journal.read_all(tools.settings.journals_dir):
        journaled.add(item.restore)
        if isinstance(item, Unreadable):
            log.error("restore %s: %s", item.restore, _unreadable(item))
            _note(tools, item.restore, _unreadable(item))
            continue
        try:
            if item.committed:
                roll_forward(tools, item)
            else:
                roll_back(tools, item, ROLLED_BACK_AT_START)
            settled.append(item)
        except Exception as exc:
            log.exception("recovery of restore %s failed; retried at the next start", item.restore)
            _note(
                tools,
                item.restore,
                f"recovery failed ({type(exc).__name__}: {exc}); Moorage tries again at its "
                "next start and left every directory where it is",
            )
    with tools.db.session() as s:
        for restore_id, staging in restore_runs.unjournaled(s, journaled):
            discard_staging(tools, restore_id, staging)
            restore_runs.cut_off(s, restore_id)
    return settled


def follow_up(tools: RestoreTools, records: list[Record]) -> None:
    """After ``recover``, once the deployer runs: bring each workload up, then close its
    restore. A failure is logged; the journal stays for the next start."""
    for record in records:
        try:
            bring_up(tools, record)
            close(tools, record)
        except Exception:
            log.exception("restore %s: bringing the workload back failed", record.restore)


def _unreadable(item: Unreadable) -> str:
    return (
        f"its journal {item.path} cannot be read ({item.reason}); Moorage left every "
        "directory as it is. Check the volumes, then remove the journal and restart"
    )


def _note(tools: RestoreTools, restore_id: str, message: str) -> None:
    with tools.db.session() as s:
        restore_runs.note(s, restore_id, message)
