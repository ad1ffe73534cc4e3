"""The restore intent journal: one JSON file per restore, replaced atomically and fsynced.

What it records is what recovery trusts; it must be on disk before the step it
describes happens. Nothing here decides anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from moorage.snapshots.swap import fsync_dir


def path_for(journals_dir: Path, restore_id: str) -> Path:
    return journals_dir / f"{restore_id}.json"


def write(journals_dir: Path, restore_id: str, record: dict[str, Any]) -> None:
    journals_dir.mkdir(parents=True, exist_ok=True)
    final = path_for(journals_dir, restore_id)
    tmp = final.with_suffix(".json.tmp")
    with open(tmp, "w") as out:
        json.dump(record, out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, final)
    fsync_dir(journals_dir)


def read_all(journals_dir: Path) -> list[dict[str, Any]]:
    if not journals_dir.is_dir():
        return []
    records = []
    for path in sorted(journals_dir.glob("*.json")):
        with open(path) as src:
            records.append(json.load(src))
    return records


def remove(journals_dir: Path, restore_id: str) -> None:
    path_for(journals_dir, restore_id).unlink(missing_ok=True)
    fsync_dir(journals_dir)
