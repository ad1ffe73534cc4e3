"""Which copies a target keeps: ``keep_last``, ``keep_daily``, ``keep_weekly``.

The rules are restic's (``restic forget``, https://restic.readthedocs.io, "Removing
snapshots according to a policy"): walking the copies newest first, ``keep_last n``
keeps the ``n`` newest; ``keep_daily n`` keeps the newest copy of each of the ``n``
most recent days that have one; ``keep_weekly n`` the same per ISO week. A copy any
rule keeps is kept. No rule at all keeps everything. Days and weeks are UTC and come
from the capture time in each copy's key, not from a clock, so the decision depends only
on what the target holds (tests give copies any capture time they like).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from moorage.offsite.layout import Held, held, meta_key
from moorage.plugins.spec import TargetStore


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


def kept(copies: Sequence[Held], keep: Keep) -> set[str]:
    """The keys of ``copies`` that ``keep`` keeps."""
    newest = sorted(copies, key=lambda h: (h.created_at, h.snapshot_id), reverse=True)
    if keep.unlimited:
        return {h.key for h in newest}
    out: set[str] = set()
    if keep.last is not None:
        out |= {h.key for h in newest[: keep.last]}
    if keep.daily is not None:
        out |= _bucketed(newest, keep.daily, lambda t: t.date())
    if keep.weekly is not None:
        out |= _bucketed(newest, keep.weekly, lambda t: t.isocalendar()[:2])
    return out


def apply(store: TargetStore, workload_id: str, keep: Keep) -> list[Held]:
    """Delete from ``store`` the workload's copies ``keep`` does not keep; return them.
    Each copy's metadata goes first, so a copy cut off half-deleted no longer counts as
    held; its data object goes next (and a leftover one is never listed as held)."""
    copies = held(store.list(f"snapshots/{workload_id}/"), workload_id)
    keys = kept(copies, keep)
    gone = [h for h in copies if h.key not in keys]
    for h in gone:
        store.delete(meta_key(h.key))
        store.delete(h.key)
    return gone
