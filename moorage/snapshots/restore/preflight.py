"""Pre-flight of a restore (SPEC section 6, step 3): all or nothing, from the CURRENT config.

Turns a request into one ``VolumePlan`` per volume, or refuses it with 409/422
before anything changes. It runs when the request comes in and again under the
workload's lock. On disk it only creates the parent of a missing stage/project
target and the two probe directories of ``supports_exchange``, which it removes.

It must never change a volume, never take a path from the manifest (targets are
derived again from the workload's current volume rows), and never accept less
free space, or fewer free inodes, than the extracted data takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput
from moorage.services.volumes import mounted_by_others
from moorage.settings import Settings
from moorage.snapshots.restore.swap import supports_exchange
from moorage.snapshots.restore.tools import RestoreTools
from moorage.store.states import SwapMethod
from moorage.volumes.paths import VOLUME_SCOPES, host_path

BLOCK = 4096
"""Bytes a directory (or a format-1 file's last partial block) takes on disk."""
INODE_MARGIN = 64
"""Inodes kept free per restored volume beyond what its entries take."""


@dataclass(frozen=True)
class VolumePlan:
    """One volume to restore: where it lives now, and the two paths beside it the restore
    will use (``staged`` for the extracted tree, ``aside`` as the two-rename spare)."""

    index: int  # in the manifest
    name: str
    scope: str
    source: str
    live: Path
    staged: Path
    aside: Path


@dataclass
class Need:
    """What extracting some volumes takes on one filesystem."""

    folder: Path
    bytes: int = 0
    inodes: int = 0


def plan(
    tools: RestoreTools,
    s: Session,
    workload_id: str,
    manifest: dict[str, Any] | None,
    volumes: list[str] | None,
    restore_id: str,
) -> list[VolumePlan]:
    """One plan per volume to restore (``volumes``, or every volume of the snapshot).

    Refuses, touching nothing: 422 ``volumes_unsupported``, ``unknown_volume``,
    ``invalid_volume``; 409 ``volume_mismatch``, ``mount_point``, ``not_a_dir``,
    ``missing_target``, ``shared_volume``, ``no_space``, ``no_exchange``.
    """
    view = tools.views.view(s, workload_id)
    if not tools.registry.source(view.kind).supports_volumes:
        raise InvalidInput(
            f"a {view.kind} workload has no Moorage volumes to restore",
            code="volumes_unsupported",
        )
    manifest = manifest or {}
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
                f"volume {name!r} is {mount.scope} now but {entry.get('scope')} in the snapshot",
                code="volume_mismatch",
            )
        # Re-derive the target from current config; never from the manifest's source.
        live = host_path(
            data_dir=tools.settings.data_dir,
            volume_roots=tools.settings.volume_roots,
            project=view.project,
            stage=view.stage,
            scope=mount.scope,
            source=mount.source,
        )
        _check_target(name, mount.scope, live)
        tag = f".moorage-restore-{restore_id}-{name}"
        plans.append(
            VolumePlan(
                int(entry["index"]),
                name,
                mount.scope,
                mount.source,
                live,
                live.parent / f"{tag}.new",
                live.parent / f"{tag}.old",
            )
        )
    check_not_shared(tools.settings, s, workload_id, plans)
    check_space(plans, manifest.get("volumes", []), tools.settings.data_dir)
    swap_mode(tools.settings, plans)
    return plans


def _check_target(name: str, scope: str, live: Path) -> None:
    if live.is_symlink():
        # The swap renames the path itself: it would replace the link and leave the
        # directory it points at (the real data) untouched.
        raise Conflict(
            f"volume {name!r}: {live} is a symbolic link; point the volume at the directory "
            f"itself ({os.path.realpath(live)}) to restore it",
            code="not_a_dir",
        )
    if os.path.ismount(live):
        raise Conflict(
            f"volume {name!r}: {live} is a mount point; Moorage will not swap it",
            code="mount_point",
        )
    if live.exists() and not live.is_dir():
        raise Conflict(f"volume {name!r}: {live} is not a directory", code="not_a_dir")
    parent = live.parent
    if scope == "absolute" and not live.is_dir():
        raise Conflict(f"volume {name!r}: {live} does not exist", code="missing_target")
    if scope != "absolute":
        parent.mkdir(parents=True, exist_ok=True)
    if live.exists() and os.stat(live).st_dev != os.stat(parent).st_dev:
        raise Conflict(
            f"volume {name!r}: {live} is on another filesystem than its parent",
            code="mount_point",
        )


def check_not_shared(
    settings: Settings, s: Session, workload_id: str, plans: list[VolumePlan]
) -> None:
    """Refuse a target another workload also mounts (409 ``shared_volume``), ``shared``
    or not: its containers keep running and would go on writing to the directory the
    swap moves aside."""
    mine = [(p, Path(os.path.realpath(p.live))) for p in plans]
    for theirs in mounted_by_others(s, settings, workload_id):
        for p, real in mine:
            if real.is_relative_to(theirs.path) or theirs.path.is_relative_to(real):
                raise Conflict(
                    f"volume {p.name!r} ({real}) is also mounted by {theirs.named()}; "
                    "a restore would pull the data from under it",
                    code="shared_volume",
                )


def entry_needs(entry: dict[str, Any]) -> tuple[int, int]:
    """Bytes and inodes one manifest volume takes once extracted.

    Format 2 counts what the tree holds on disk: its allocated bytes (a sparse file
    takes its data, not its length) plus a block per directory and symlink, and an
    inode per file, directory, symlink and fifo (hard links share one). Format 1 knows
    only files and bytes: each file's bytes plus a block, and an inode per file.
    Every volume also gets its root directory and ``INODE_MARGIN`` inodes.
    """
    files = int(entry.get("files", 0))
    others = sum(int(entry.get(key, 0)) for key in ("dirs", "symlinks", "fifos"))
    if "allocated_bytes" in entry:
        size = int(entry["allocated_bytes"]) + BLOCK * (
            int(entry.get("dirs", 0)) + int(entry.get("symlinks", 0))
        )
    else:
        size = int(entry.get("bytes", 0)) + BLOCK * files
    return size + BLOCK, files + others + 1 + INODE_MARGIN


def needs(
    plans: Iterable[VolumePlan], manifest_volumes: list[dict[str, Any]], scratch_parent: Path
) -> dict[int, Need]:
    """What the extraction takes per filesystem (by device): each restored volume beside
    its target, and each volume of the archive that is not restored in the scratch
    directory under ``scratch_parent`` (the reader unpacks every volume)."""
    by_index = {int(v["index"]): v for v in manifest_volumes}
    folders = {p.index: p.live.parent for p in plans}
    out: dict[int, Need] = {}
    for index, entry in by_index.items():
        folder = folders.get(index, scratch_parent)
        need = out.setdefault(os.stat(folder).st_dev, Need(folder))
        size, inodes = entry_needs(entry)
        need.bytes += size
        need.inodes += inodes
    return out


def check_space(
    plans: list[VolumePlan], manifest_volumes: list[dict[str, Any]], scratch_parent: Path
) -> None:
    """Refuse (409 ``no_space``) when a filesystem has fewer free bytes or inodes than
    the extraction takes there (``needs``). A filesystem without an inode count (it
    reports 0 inodes in all) is judged by bytes alone."""
    for need in needs(plans, manifest_volumes, scratch_parent).values():
        st = os.statvfs(need.folder)
        free, inodes = st.f_bavail * st.f_frsize, st.f_favail
        if free < need.bytes:
            raise Conflict(
                f"{need.folder} has {free} bytes free; the restore needs {need.bytes}",
                code="no_space",
            )
        if st.f_files and inodes < need.inodes:
            raise Conflict(
                f"{need.folder} has {inodes} free inodes; the restore needs {need.inodes}",
                code="no_space",
            )


def swap_mode(settings: Settings, plans: list[VolumePlan]) -> SwapMethod:
    """``exchange`` when RENAME_EXCHANGE works beside every target (probed), else
    ``rename``; ``MOORAGE_RESTORE_SWAP`` may force either (409 ``no_exchange``)."""
    forced = settings.restore_swap
    if forced == SwapMethod.RENAME:
        return SwapMethod.RENAME
    ok = all(supports_exchange(p.live.parent) for p in plans)
    if forced == SwapMethod.EXCHANGE and not ok:
        raise Conflict(
            "RENAME_EXCHANGE is not supported here; set MOORAGE_RESTORE_SWAP=auto",
            code="no_exchange",
        )
    return SwapMethod.EXCHANGE if ok else SwapMethod.RENAME
