"""Packing the data a restore replaced (SPEC section 6, step 7): the moved-aside trees
become a durable pre-restore snapshot, and only then are they removed.

Runs after the restore has ended, outside the workload's lock (its paths carry
the restore's own id). The replaced data is deleted only once an archive that
holds every entry of it is durable: when the writer skips anything (a socket, a
device, an entry that vanished), or packing fails, every moved-aside tree stays
where it is and the restore row names the paths and why (``kept_paths``,
``kept_reason``).

It must never delete a directory it has not identified by inode, never delete
one the archive does not hold whole, and it removes the journal last.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from moorage.names import new_id
from moorage.services import captures, restore_runs
from moorage.services import snapshots as snapshot_service
from moorage.snapshots.archive import VolumeSource, WriteResult, write_archive
from moorage.snapshots.restore import journal
from moorage.snapshots.restore.journal import Record, VolumeStep
from moorage.snapshots.restore.swap import fsync_dir, inode
from moorage.snapshots.restore.tools import RestoreTools

log = logging.getLogger("moorage.restore")
SHOWN_SKIPS = 5
"""How many skipped entries a kept reason names; the snapshot's warnings list them all."""


def holders(record: Record) -> list[tuple[VolumeStep, Path]]:
    """Where each volume's replaced tree is now, found by its inode among the volume's
    spares; a volume whose replaced tree is at neither is left out."""
    found = []
    for v in record.volumes:
        holder = next((p for p in v.spares if inode(p) == v.old_inode), None)
        if holder is not None:
            found.append((v, holder))
    return found


def remove_if(path: Path, expected_inode: int) -> None:
    """Remove the directory at ``path`` only if it is the one with ``expected_inode``."""
    if inode(path) == expected_inode:
        shutil.rmtree(path)
        fsync_dir(path.parent)


def pack(tools: RestoreTools, record: Record) -> None:
    """Pack the replaced trees of a committed restore into a pre-restore snapshot, then
    remove them if that archive holds every entry, else keep them and say so on the row.

    Idempotent: after a crash it is run again with the journal's record. A pre-restore
    snapshot already ``ready`` is not packed twice (the row already says whether its
    trees were kept). Raises whatever writing the archive raises; the trees and the
    journal then stay for the next start (``pack_logged`` records why on the row).
    """
    settings = tools.settings
    olds = holders(record)
    with tools.db.session() as s:
        packed_before = record.pre_restore is not None and captures.is_ready(s, record.pre_restore)
        kept_before = restore_runs.kept_any(s, record.restore)
    if packed_before:
        # Packed before a crash; the row, written with the snapshot, says what was kept.
        if not kept_before:
            for v, holder in olds:
                remove_if(holder, v.old_inode)
        journal.remove(settings.journals_dir, record.restore)
        return
    if olds:
        snapshot_id = new_id("sn")
        record.pre_restore = snapshot_id
        journal.write(settings.journals_dir, record)
        written = _write(tools, record, snapshot_id, olds)
        kept = [] if written.complete else [str(holder) for _, holder in olds]
        with tools.db.session() as s:
            captures.ready(
                s,
                snapshot_id,
                captures.Written(written.size, written.sha256, written.manifest, written.warnings),
                total_bytes=sum(int(v.get("bytes", 0)) for v in written.manifest["volumes"]),
            )
            reason = _why(snapshot_id, written.skipped, kept) if kept else None
            restore_runs.packed(s, record.restore, snapshot_id, kept, reason)
        if not kept:
            for v, holder in olds:
                remove_if(holder, v.old_inode)
    journal.remove(settings.journals_dir, record.restore)


def _write(
    tools: RestoreTools, record: Record, snapshot_id: str, olds: list[tuple[VolumeStep, Path]]
) -> WriteResult:
    """Write the archive of a new pre-restore snapshot; a failure fails its row."""
    settings = tools.settings
    with tools.db.session() as s:
        view = tools.views.view(s, record.workload)
        captures.begin_pre_restore(s, snapshot_id, record.workload, [v.name for v, _ in olds])
    sources = [
        VolumeSource(index=i, name=v.name, scope=v.scope, source=v.source, path=holder)
        for i, (v, holder) in enumerate(olds)
    ]
    dest = snapshot_service.archive_path_for(settings, record.workload, snapshot_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return write_archive(dest, {"id": view.id, "name": view.name, "kind": view.kind}, sources)
    except BaseException as exc:
        dest.unlink(missing_ok=True)
        with tools.db.session() as s:
            captures.fail(s, snapshot_id, f"packing failed: {type(exc).__name__}")
        raise


def _why(snapshot_id: str, skipped: list[str], kept: list[str]) -> str:
    shown = "; ".join(skipped[:SHOWN_SKIPS])
    more = f" and {len(skipped) - SHOWN_SKIPS} more" if len(skipped) > SHOWN_SKIPS else ""
    return (
        f"snapshot {snapshot_id} could not hold {len(skipped)} "
        f"{'entry' if len(skipped) == 1 else 'entries'} of the replaced data ({shown}{more}), "
        f"so the replaced data stays on disk at {', '.join(kept)}; "
        "remove it yourself once you no longer need it"
    )


def pack_logged(tools: RestoreTools, record: Record) -> None:
    """``pack``, for a background thread: a failure is logged and recorded on the row
    with the paths still on disk; the journal stays, so the next start packs again."""
    try:
        pack(tools, record)
    except Exception as exc:
        log.exception("packing the replaced data of restore %s failed", record.restore)
        kept = [str(holder) for _, holder in holders(record)]
        reason = (
            f"packing the replaced data failed ({type(exc).__name__}: {exc}); it stays "
            f"on disk at {', '.join(kept) or '(nowhere: see the server log)'} and "
            "Moorage packs it again at its next start"
        )
        with tools.db.session() as s:
            restore_runs.packed(s, record.restore, None, kept, reason)
