"""The restore intent journal: one typed record per restore, one JSON file, replaced atomically.

``<data>/journals/<restore id>.json`` holds a ``Record``. ``write`` puts it on disk
before the step it describes happens (write a temporary file, fsync it, rename it
over the journal, fsync the directory), so a reader sees the old record or the new
one, never a torn one. The JSON is the one Moorage has always written (keys
sorted, ``json.dump``'s separators, ``pre_restore`` only once it is known), so a
journal left by an older version recovers and a record reads back equal.

It decides nothing and never touches a volume. A file it cannot read whole comes
back as ``Unreadable``, never as a guess.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moorage.snapshots.restore.swap import fsync_dir
from moorage.store.states import SwapMethod

PREPARED = "prepared"
"""Written before the first container stops: recovery rolls back."""
COMMITTED = "committed"
"""Written after the last swap: recovery rolls forward. The one bit recovery decides on."""
STATES = (PREPARED, COMMITTED)
SWAPS = tuple(SwapMethod)

_RECORD_KEYS = {"restore", "workload", "snapshot", "state", "swap", "containers", "volumes"}
_OPTIONAL_KEYS = {"pre_restore"}
_VOLUME_KEYS = {
    "index",
    "name",
    "scope",
    "source",
    "live",
    "staged",
    "aside",
    "old_inode",
    "new_inode",
}


class CorruptJournal(ValueError):
    """A journal file that is not a whole, well-formed record."""


@dataclass
class VolumeStep:
    """One volume of a restore: where it lives and which inode is which tree."""

    index: int
    """The volume's index in the archive's manifest."""
    name: str
    scope: str
    source: str
    live: Path
    """The live path, derived from the workload's config at pre-flight."""
    staged: Path
    """``<parent>/.moorage-restore-<rid>-<name>.new``: the extracted tree before the swap."""
    aside: Path
    """``<parent>/.moorage-restore-<rid>-<name>.old``: a free spare for the two-rename swap."""
    old_inode: int
    """The tree that was live before the restore (the replaced data)."""
    new_inode: int
    """The tree extracted from the snapshot."""

    @property
    def spares(self) -> list[Path]:
        """The two paths beside ``live`` where either tree may sit, in converge order."""
        return [self.staged, self.aside]


@dataclass
class Record:
    """What one restore has done, as far as recovery needs to know."""

    restore: str
    workload: str
    snapshot: str
    state: str
    """``prepared`` or ``committed``."""
    swap: SwapMethod
    """``exchange`` (RENAME_EXCHANGE) or ``rename`` (two renames)."""
    containers: list[str]
    """The engine ids of the containers that ran when the restore began (informative)."""
    volumes: list[VolumeStep] = field(default_factory=list)
    pre_restore: str | None = None
    """The snapshot the replaced data is being packed into, once packing has begun."""

    @property
    def committed(self) -> bool:
        return self.state == COMMITTED

    @property
    def use_exchange(self) -> bool:
        return self.swap == SwapMethod.EXCHANGE

    def to_json(self) -> dict[str, Any]:
        """The record as the journal file holds it."""
        data: dict[str, Any] = {
            "restore": self.restore,
            "workload": self.workload,
            "snapshot": self.snapshot,
            "state": self.state,
            "swap": self.swap,
            "containers": list(self.containers),
            "volumes": [
                {
                    "index": v.index,
                    "name": v.name,
                    "scope": v.scope,
                    "source": v.source,
                    "live": str(v.live),
                    "staged": str(v.staged),
                    "aside": str(v.aside),
                    "old_inode": v.old_inode,
                    "new_inode": v.new_inode,
                }
                for v in self.volumes
            ],
        }
        if self.pre_restore is not None:
            data["pre_restore"] = self.pre_restore
        return data

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Parse a journal's JSON value; raise ``CorruptJournal`` unless every field is there
        with its type and nothing else is (a record only partly understood is not acted on)."""
        _keys(data, _RECORD_KEYS, _OPTIONAL_KEYS, "the record")
        for key in ("restore", "workload", "snapshot"):
            _text(data[key], key)
        if data["state"] not in STATES:
            raise CorruptJournal(f"state {data['state']!r} is not one of {', '.join(STATES)}")
        if data["swap"] not in SWAPS:
            raise CorruptJournal(f"swap {data['swap']!r} is not one of {', '.join(SWAPS)}")
        containers = data["containers"]
        if not isinstance(containers, list):
            raise CorruptJournal("containers is not a list")
        for c in containers:
            _text(c, "a container id")
        if not isinstance(data["volumes"], list):
            raise CorruptJournal("volumes is not a list")
        pre_restore = data.get("pre_restore")
        if pre_restore is not None:
            _text(pre_restore, "pre_restore")
        return cls(
            restore=data["restore"],
            workload=data["workload"],
            snapshot=data["snapshot"],
            state=data["state"],
            swap=SwapMethod(data["swap"]),
            containers=list(containers),
            volumes=[_volume(v) for v in data["volumes"]],
            pre_restore=pre_restore,
        )


@dataclass(frozen=True)
class Unreadable:
    """A journal file that could not be read as a record: left alone, and reported."""

    restore: str
    """The restore id its file name carries."""
    path: Path
    reason: str


def _keys(data: Any, required: set[str], optional: set[str], what: str) -> None:
    if not isinstance(data, dict):
        raise CorruptJournal(f"{what} is not a JSON object")
    missing, extra = required - data.keys(), data.keys() - required - optional
    if missing:
        raise CorruptJournal(f"{what} lacks {', '.join(sorted(missing))}")
    if extra:
        raise CorruptJournal(f"{what} has unknown fields {', '.join(sorted(extra))}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CorruptJournal(f"{what} is not a non-empty string")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise CorruptJournal(f"{what} is not a string")
    return value


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CorruptJournal(f"{what} is not a whole number")
    return value


def _volume(data: Any) -> VolumeStep:
    _keys(data, _VOLUME_KEYS, set(), "a volume")
    paths = {k: Path(_text(data[k], k)) for k in ("live", "staged", "aside")}
    if not all(p.is_absolute() for p in paths.values()):
        raise CorruptJournal("a volume path is not absolute")
    return VolumeStep(
        index=_count(data["index"], "index"),
        name=_text(data["name"], "name"),
        scope=_text(data["scope"], "scope"),
        source=_string(data["source"], "source"),
        old_inode=_count(data["old_inode"], "old_inode"),
        new_inode=_count(data["new_inode"], "new_inode"),
        **paths,
    )


def path_for(journals_dir: Path, restore_id: str) -> Path:
    """``<journals_dir>/<restore id>.json``: one file per unfinished restore."""
    return journals_dir / f"{restore_id}.json"


def write(journals_dir: Path, record: Record) -> None:
    """Replace the restore's journal with ``record``, durably, in one atomic step."""
    if not journals_dir.is_dir():
        journals_dir.mkdir(parents=True, exist_ok=True)
        fsync_dir(journals_dir.parent)
    final = path_for(journals_dir, record.restore)
    tmp = final.with_suffix(".json.tmp")
    with open(tmp, "w") as out:
        json.dump(record.to_json(), out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, final)
    fsync_dir(journals_dir)


def read(path: Path) -> Record:
    """The record in one journal file; ``CorruptJournal`` when it is not a whole one
    (its restore id must also match the file's name)."""
    try:
        with open(path, "rb") as src:
            data = json.loads(src.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptJournal(f"not JSON: {exc}") from None
    record = Record.from_json(data)
    if record.restore != path.stem:
        raise CorruptJournal(f"it names restore {record.restore!r}, not {path.stem!r}")
    return record


def read_one(journals_dir: Path, restore_id: str) -> Record | Unreadable | None:
    """The journal of one restore: its record, ``Unreadable``, or None when there is none."""
    path = path_for(journals_dir, restore_id)
    if not path.exists():
        return None
    try:
        return read(path)
    except (CorruptJournal, OSError) as exc:
        return Unreadable(restore_id, path, str(exc))


def read_all(journals_dir: Path) -> list[Record | Unreadable]:
    """Every journal in the directory, by restore id. A file that cannot be read whole
    comes back as ``Unreadable`` (the others still do); ``*.json.tmp`` leftovers of an
    interrupted write are not journals."""
    if not journals_dir.is_dir():
        return []
    found: list[Record | Unreadable] = []
    for path in sorted(journals_dir.glob("*.json")):
        item = read_one(journals_dir, path.stem)
        if item is not None:
            found.append(item)
    return found


def remove(journals_dir: Path, restore_id: str) -> None:
    """Delete the restore's journal durably; recovery then has nothing left to do for it."""
    path = path_for(journals_dir, restore_id)
    if path.exists():
        path.unlink()
        fsync_dir(journals_dir)
