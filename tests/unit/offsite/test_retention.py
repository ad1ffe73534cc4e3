"""Off-site retention (``offsite/retention.py``) groups copies as local retention groups
snapshots (``store.states.RETENTION_GROUPS``).

What must hold: ``keep_last``, ``keep_daily`` and ``keep_weekly`` count captures (manual
and scheduled together) and deploy checkpoints each on their own, so no automatic copy
pushes out a copy a person or a schedule made; copies of origins local retention never
prunes (imports, pre-restore, recovery points) are never pruned off-site; a copy whose
origin is not known (metadata written before it carried one, an origin this version does
not know, metadata that does not decrypt) is never pruned; ``apply`` reads each origin
from the copy's metadata on the target and deletes a pruned copy's metadata before its
data.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from moorage.offsite import layout, retention
from moorage.offsite.layout import Held
from moorage.offsite.retention import Keep
from moorage.storage.encryption import new_keypair
from moorage.storage.local import LocalStorage, LocalStore
from moorage.store.states import SnapshotOrigin

WL = "wl_0000000000000000"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
MANUAL = SnapshotOrigin.MANUAL
SCHEDULED = SnapshotOrigin.SCHEDULED
CHECKPOINT = SnapshotOrigin.CHECKPOINT
IMPORT = SnapshotOrigin.IMPORT
PRE_RESTORE = SnapshotOrigin.PRE_RESTORE
RECOVERY_POINT = SnapshotOrigin.RECOVERY_POINT


def shape(*origins: str | None) -> tuple[list[Held], dict[str, str | None]]:
    """Copies ``k0``, ``k1``, ... of these origins, oldest first, one an hour up to T0."""
    copies = [
        Held(f"k{n}", WL, f"sn_{n:016x}", T0 - timedelta(hours=len(origins) - 1 - n), 1)
        for n in range(len(origins))
    ]
    return copies, {c.key: o for c, o in zip(copies, origins, strict=True)}


def keys(*numbers: int) -> set[str]:
    return {f"k{n}" for n in numbers}


def test_checkpoints_never_push_out_a_manual_copy() -> None:
    # The newcomer's case: one copy made by hand, then more deploys than keep_last.
    copies, origins = shape(MANUAL, *[CHECKPOINT] * 5)
    assert retention.kept(copies, Keep(last=3), origins) == keys(0, 3, 4, 5)


def test_manual_and_scheduled_copies_count_together() -> None:
    copies, origins = shape(MANUAL, SCHEDULED, MANUAL, SCHEDULED, CHECKPOINT, CHECKPOINT)
    assert retention.kept(copies, Keep(last=2), origins) == keys(2, 3, 4, 5)


def test_imports_pre_restore_and_recovery_points_are_never_pruned() -> None:
    copies, origins = shape(
        PRE_RESTORE, RECOVERY_POINT, IMPORT, PRE_RESTORE, *[CHECKPOINT] * 4, *[MANUAL] * 3
    )
    assert retention.kept(copies, Keep(last=1), origins) == keys(0, 1, 2, 3, 7, 10)
    assert retention.kept(copies, Keep(daily=1), origins) == keys(0, 1, 2, 3, 7, 10)
    assert retention.kept(copies, Keep(weekly=1), origins) == keys(0, 1, 2, 3, 7, 10)


def test_a_copy_of_unknown_origin_is_never_pruned() -> None:
    # k0: metadata without an origin (older copies); k1: an origin this version does not
    # know; k2: no entry at all (its metadata could not be read).
    copies, origins = shape(None, "made-by-a-later-version", None, *[CHECKPOINT] * 3)
    del origins["k2"]
    assert retention.kept(copies, Keep(last=1), origins) == keys(0, 1, 2, 5)
    assert retention.kept(copies, Keep(daily=1, weekly=1), origins) == keys(0, 1, 2, 5)


@pytest.mark.parametrize(
    ("origin", "pruned"),
    [
        (MANUAL, True),
        (SCHEDULED, True),
        (CHECKPOINT, True),
        (IMPORT, False),
        (PRE_RESTORE, False),
        (RECOVERY_POINT, False),
    ],
)
def test_each_origin_is_pruned_as_local_retention_prunes_it(origin: str, pruned: bool) -> None:
    assert {str(o) for o in SnapshotOrigin} == {
        MANUAL,
        SCHEDULED,
        CHECKPOINT,
        IMPORT,
        PRE_RESTORE,
        RECOVERY_POINT,
    }, "a new origin needs a row here"
    copies, origins = shape(origin, origin, origin)
    assert retention.kept(copies, Keep(last=1), origins) == (keys(2) if pruned else keys(0, 1, 2))


def test_days_and_weeks_are_counted_within_each_group() -> None:
    def at(n: int, t: datetime) -> Held:
        return Held(f"k{n}", WL, f"sn_{n:016x}", t, 1)

    copies = [
        at(0, T0 - timedelta(days=8)),  # manual, the Sunday of the week before last
        at(1, T0 - timedelta(days=1)),  # manual, Sunday: last week
        at(2, T0 - timedelta(days=1, hours=1)),  # checkpoint, Sunday
        at(3, T0 - timedelta(hours=2)),  # manual, Monday (T0's day)
        at(4, T0 - timedelta(hours=1)),  # checkpoint, Monday
        at(5, T0),  # checkpoint, Monday
    ]
    origins: dict[str, str | None] = {
        "k0": MANUAL,
        "k1": MANUAL,
        "k2": CHECKPOINT,
        "k3": MANUAL,
        "k4": CHECKPOINT,
        "k5": CHECKPOINT,
    }
    # The newest of T0's day in each group: a deploy that day does not stand in for the
    # capture a person took that day.
    assert retention.kept(copies, Keep(daily=1), origins) == keys(3, 5)
    assert retention.kept(copies, Keep(daily=2), origins) == keys(1, 2, 3, 5)
    # Weeks the same way: this week's newest of each, then last week's.
    assert retention.kept(copies, Keep(weekly=1), origins) == keys(3, 5)
    assert retention.kept(copies, Keep(weekly=3), origins) == keys(0, 1, 2, 3, 5)
    # Only checkpoints this week: the captures' newest week is still theirs.
    del origins["k3"]
    copies.pop(3)
    assert retention.kept(copies, Keep(weekly=1), origins) == keys(1, 5)


def test_no_rule_keeps_every_copy() -> None:
    copies, origins = shape(MANUAL, CHECKPOINT, CHECKPOINT, None)
    assert retention.kept(copies, Keep(), origins) == keys(0, 1, 2, 3)
    assert retention.kept([], Keep(last=3), {}) == set()


class Recording(LocalStore):
    """A local target that remembers the order of its deletes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.deleted: list[str] = []

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        super().delete(key)


def put_copy(store: LocalStore, n: int, meta: dict[str, Any] | None, recipient: str) -> str:
    created = T0 - timedelta(hours=10 - n)
    key = layout.data_key(WL, f"sn_{n:016x}", created)
    data: BinaryIO = io.BytesIO(b"ciphertext")
    store.put(key, data)
    layout.write_meta(store, key, meta if meta is not None else {"format": 1}, recipient)
    return key


def snapshot_meta(n: int, origin: str | None) -> dict[str, Any]:
    snapshot: dict[str, Any] = {"id": f"sn_{n:016x}", "size": 1, "sha256": "0" * 64}
    if origin is not None:
        snapshot["origin"] = origin
    return {"format": 1, "workload": {"id": WL}, "snapshot": snapshot}


def test_apply_reads_origins_from_the_metadata_on_the_target(tmp_path: Path) -> None:
    LocalStorage().open({"path": str(tmp_path / "target")})
    store = Recording(tmp_path / "target")
    keys_, other = new_keypair(), new_keypair()
    old = put_copy(store, 0, snapshot_meta(0, None), keys_.recipient)  # before origins
    foreign = put_copy(store, 1, snapshot_meta(1, CHECKPOINT), other.recipient)
    odd = put_copy(store, 2, {"format": 1, "snapshot": "not an object"}, keys_.recipient)
    manual = put_copy(store, 3, snapshot_meta(3, MANUAL), keys_.recipient)
    checkpoints = [
        put_copy(store, n, snapshot_meta(n, CHECKPOINT), keys_.recipient) for n in range(4, 9)
    ]
    pre_restore = put_copy(store, 9, snapshot_meta(9, PRE_RESTORE), keys_.recipient)

    gone = retention.apply(store, WL, Keep(last=2), keys_.identity)

    assert sorted(h.key for h in gone) == sorted(checkpoints[:3])
    left = {h.key for h in layout.held(store.list(layout.PREFIX), WL)}
    assert left == {old, foreign, odd, manual, *checkpoints[3:], pre_restore}
    # Nothing of a pruned copy stays, and its metadata went first.
    assert {o.key for o in store.list(layout.PREFIX)} == left | {layout.meta_key(k) for k in left}
    for key in checkpoints[:3]:
        assert store.deleted.index(layout.meta_key(key)) < store.deleted.index(key)
    assert set(store.deleted) == {k for c in checkpoints[:3] for k in (c, layout.meta_key(c))}


def test_apply_with_no_rule_reads_and_deletes_nothing(tmp_path: Path) -> None:
    store = Recording(tmp_path)
    keys_ = new_keypair()
    for n in range(3):
        put_copy(store, n, snapshot_meta(n, CHECKPOINT), keys_.recipient)
    assert retention.apply(store, WL, Keep(), keys_.identity) == []
    assert store.deleted == []
    assert len(layout.held(store.list(layout.PREFIX), WL)) == 3
