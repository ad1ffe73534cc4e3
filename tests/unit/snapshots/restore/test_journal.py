"""The journal: a typed record that reads and writes byte for byte the JSON Moorage has
always written, durably (fsync the file, rename, fsync the directory), and a file that is
not a whole record comes back as Unreadable without hiding the others."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from moorage.snapshots.restore import journal
from moorage.snapshots.restore.journal import CorruptJournal, Record, Unreadable

# A record exactly as moorage/snapshots/journal.py wrote it before the typed record.
OLD: dict[str, Any] = {
    "restore": "rs_0123456789abcdef",
    "workload": "wl_0123456789abcdef",
    "snapshot": "sn_0123456789abcdef",
    "state": "prepared",
    "swap": "exchange",
    "containers": ["4f1c0ffee", "5e2d0ffee"],
    "volumes": [
        {
            "index": 1,
            "name": "www",
            "scope": "stage",
            "source": "site/www",
            "live": "/var/volumes/p/production/site/www",
            "staged": "/var/volumes/p/production/site/.moorage-restore-rs_0123456789abcdef-www.new",
            "aside": "/var/volumes/p/production/site/.moorage-restore-rs_0123456789abcdef-www.old",
            "old_inode": 1234,
            "new_inode": 5678,
        }
    ],
}


def old_bytes(record: dict[str, Any]) -> bytes:
    """What the old ``journal.write`` put on disk: ``json.dump(record, out, sort_keys=True)``."""
    return json.dumps(record, sort_keys=True).encode()


@pytest.mark.parametrize("pre_restore", [None, "sn_fedcba9876543210"])
@pytest.mark.parametrize("state", ["prepared", "committed"])
def test_the_json_on_disk_is_the_same_as_before(
    tmp_path: Path, state: str, pre_restore: str | None
) -> None:
    data = {**OLD, "state": state}
    if pre_restore is not None:
        data["pre_restore"] = pre_restore
    # Written by the old code, read by the new: the same record, and it writes the same bytes.
    path = journal.path_for(tmp_path, OLD["restore"])
    path.write_bytes(old_bytes(data))
    record = journal.read(path)
    assert record.to_json() == data
    assert record.committed is (state == "committed")
    assert record.volumes[0].live == Path(OLD["volumes"][0]["live"])
    path.unlink()
    journal.write(tmp_path, record)
    assert path.read_bytes() == old_bytes(data)
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_a_record_round_trips(tmp_path: Path) -> None:
    record = Record.from_json(OLD)
    journal.write(tmp_path, record)
    record.state, record.pre_restore = journal.COMMITTED, "sn_x"
    journal.write(tmp_path, record)  # replaced in place
    [again] = journal.read_all(tmp_path)
    assert again == record


def test_write_fsyncs_the_file_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(journal.os, "fsync", fsync)
    monkeypatch.setattr(journal.os, "replace", replace)
    directory = tmp_path / "journals"
    journal.write(directory, Record.from_json(OLD))
    final = journal.path_for(directory, OLD["restore"])
    tmp = f"{final}.tmp"
    assert events == [
        ("fsync", str(tmp_path)),  # the new journals directory's own entry
        ("fsync", tmp),
        ("replace", f"{tmp} -> {final}"),
        ("fsync", str(directory)),
    ]


def test_a_write_cut_before_its_rename_leaves_the_previous_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = Record.from_json(OLD)
    journal.write(tmp_path, record)
    before = journal.path_for(tmp_path, record.restore).read_bytes()

    def cut(src: Any, dst: Any) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(journal.os, "replace", cut)
    record.state = journal.COMMITTED
    with pytest.raises(OSError, match="power lost"):
        journal.write(tmp_path, record)
    assert journal.path_for(tmp_path, record.restore).read_bytes() == before
    # The half-written temporary file is not a journal.
    assert journal.read_all(tmp_path) == [Record.from_json(OLD)]


def broken(change: Any) -> bytes:
    data = json.loads(json.dumps(OLD))
    change(data)
    return json.dumps(data).encode()


CORRUPT = {
    "empty file": b"",
    "truncated": old_bytes(OLD)[:-7],
    "not utf-8": b"\xff\xfe{}",
    "not an object": b"[1, 2]",
    "missing key": broken(lambda d: d.pop("swap")),
    "unknown key": broken(lambda d: d.update(future="x")),
    "unknown state": broken(lambda d: d.update(state="half-done")),
    "unknown swap": broken(lambda d: d.update(swap="copy")),
    "inode as text": broken(lambda d: d["volumes"][0].update(old_inode="1234")),
    "inode as bool": broken(lambda d: d["volumes"][0].update(new_inode=True)),
    "relative path": broken(lambda d: d["volumes"][0].update(live="volumes/www")),
    "volume not an object": broken(lambda d: d.update(volumes=["www"])),
    "other restore's record": broken(lambda d: d.update(restore="rs_other")),
}


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_a_corrupt_journal_is_unreadable_and_the_others_still_read(
    tmp_path: Path, content: bytes
) -> None:
    bad = journal.path_for(tmp_path, OLD["restore"])
    bad.write_bytes(content)
    good = Record.from_json({**OLD, "restore": "rs_zzzz"})
    journal.write(tmp_path, good)
    found = journal.read_all(tmp_path)
    assert len(found) == 2
    assert isinstance(found[0], Unreadable)
    assert (found[0].restore, found[0].path) == (OLD["restore"], bad)
    assert found[1] == good
    with pytest.raises(CorruptJournal):
        journal.read(bad)
    assert bad.read_bytes() == content  # reading never rewrites or removes it


def test_remove_deletes_only_that_journal_and_tolerates_none(tmp_path: Path) -> None:
    journal.write(tmp_path, Record.from_json(OLD))
    journal.write(tmp_path, Record.from_json({**OLD, "restore": "rs_keep"}))
    journal.remove(tmp_path, OLD["restore"])
    journal.remove(tmp_path, OLD["restore"])
    journal.remove(tmp_path / "never-made", "rs_x")
    assert [r.restore for r in journal.read_all(tmp_path) if isinstance(r, Record)] == ["rs_keep"]
    assert journal.read_one(tmp_path, OLD["restore"]) is None
