"""Which copies a target keeps: ``keep_last``, ``keep_daily``, ``keep_weekly``.

The rules are restic's (``restic forget``, https://restic.readthedocs.io, "Removing
snapshots according to a policy"): walking the copies newest first, ``keep_last n``
keeps the ``n`` newest; ``keep_daily n`` keeps the newest copy of each of the ``n``
most recent days that have one; ``keep_weekly n`` the same per ISO week. A copy any
rule keeps is kept. No rule at all keeps everything. Days and weeks are UTC and come
from the capture time in each copy's key, not from a clock.

The rules count copies in the groups local retention counts snapshots in
(``store.states.RETENTION_GROUPS``): captures (manual and scheduled) apart from deploy
checkpoints, so a run of deploys never pushes out a copy a person or a schedule made.
``keep_daily`` and ``keep_weekly`` are counted within each group too: each group keeps
the newest copy of each of its own ``n`` most recent days (weeks), so a day's deploy
does not stand in for the capture a person took that day; the target may then hold the
policy's numbers once per group. Copies of an origin in no group (imports, pre-restore,
recovery points: local retention never prunes them) are never pruned here either.

A copy's origin is in its metadata object on the target (``layout``; written since the
first copy, as ``snapshot.origin``), so the decision depends only on what the target
holds, as it did: tests give copies any capture time and origin they like. A copy
whose origin cannot be told (metadata without one, an origin this version does not
know, metadata that does not decrypt or is not Moorage's shape, or that cannot be read
now) is never pruned: what cannot be classified is kept, and counts in no group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from moorage.errors import TargetError
from moorage.offsite.layout import Held, held, meta_key, read_meta
from moorage.plugins.spec import TargetStore
from moorage.store.states import RETENTION_GROUPS


@dataclass(frozen=True)
class Keep:
    """A policy's limits; None: no limit of that kind."""

    last: int | None = None
    daily: int | None = None
    weekly: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.last is None and self.daily is None and self.weekly is None


def _bucketed(
    newest_first: Sequence[Held], n: int, bucket: Callable[[datetime], object]
) -> set[str]:
    kept: set[str] = set()
    seen: set[object] = set()
    for h in newest_first:
        b = bucket(h.created_at)
        if b in seen:
            continue
        if len(seen) >= n:
            break
        seen.add(b)
        kept.add(h.key)
    return kept


def _kept_of_group(newest: Sequence[Held], keep: Keep) -> set[str]:
    out: set[str] = set()
    if keep.last is not None:
        out |= {h.key for h in newest[: keep.last]}
    if keep.daily is not None:
        out |= _bucketed(newest, keep.daily, lambda t: t.date())
    if keep.weekly is not None:
        out |= _bucketed(newest, keep.weekly, lambda t: t.isocalendar()[:2])
    return out


def kept(copies: Sequence[Held], keep: Keep, origins: Mapping[str, str | None]) -> set[str]:
    """The keys of ``copies`` that ``keep`` keeps; ``origins`` gives each copy's snapshot
    origin by key. A copy missing from it, or whose origin is None or in no
    ``RETENTION_GROUPS`` group, is kept."""
    newest = sorted(copies, key=lambda h: (h.created_at, h.snapshot_id), reverse=True)
    if keep.unlimited:
        return {h.key for h in newest}
    out: set[str] = set()
    grouped: set[str] = set()
    for group in RETENTION_GROUPS:
        members = [h for h in newest if origins.get(h.key) in group]
        grouped |= {h.key for h in members}
        out |= _kept_of_group(members, keep)
    return out | {h.key for h in newest if h.key not in grouped}


def origin_of(store: TargetStore, key: str, identity: str) -> str | None:
    """The snapshot origin the copy ``key``'s metadata records, or None when it cannot be
    told (no origin in it; metadata that does not decrypt, is not Moorage's, or cannot
    be read): such a copy is never pruned."""
    try:
        meta = read_meta(store, key, identity)
    except TargetError:
        return None
    snapshot = meta.get("snapshot")
    origin = snapshot.get("origin") if isinstance(snapshot, dict) else None
    return origin if isinstance(origin, str) else None


def apply(store: TargetStore, workload_id: str, keep: Keep, identity: str) -> list[Held]:
    """Delete from ``store`` the workload's copies ``keep`` does not keep; return them.
    Each copy's origin is read from its metadata with the target's ``identity``
    (``origin_of``) before anything is deleted. Each copy's metadata goes first, so a
    copy cut off half-deleted no longer counts as held; its data object goes next (and a
    leftover one is never listed as held)."""
    if keep.unlimited:
        return []
    copies = held(store.list(f"snapshots/{workload_id}/"), workload_id)
    origins = {h.key: origin_of(store, h.key, identity) for h in copies}
    keys = kept(copies, keep, origins)
    gone = [h for h in copies if h.key not in keys]
    for h in gone:
        store.delete(meta_key(h.key))
        store.delete(h.key)
    return gone
