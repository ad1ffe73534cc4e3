"""What errors say: a full disk is named as one, with the directory and its free space."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from moorage.errors import DiskFull


@pytest.mark.parametrize(("code", "what"), [(errno.ENOSPC, "no space"), (errno.EDQUOT, "no quota")])
def test_a_full_disk_or_spent_quota_is_said_plainly(tmp_path: Path, code: int, what: str) -> None:
    error = DiskFull.of(OSError(code, "full"), str(tmp_path), "then try again")
    assert error is not None
    assert error.code == "disk_full"
    assert error.message.startswith(f"{what} left on the disk holding {tmp_path} (")
    assert "MiB free of" in error.message
    assert error.message.endswith("free some space there, then try again")
    assert error.details == {"path": str(tmp_path)}


def test_other_os_errors_are_not_a_full_disk(tmp_path: Path) -> None:
    for code in (errno.EACCES, errno.EIO, errno.ENOENT, None):
        assert DiskFull.of(OSError(code, "x"), str(tmp_path), "then") is None


def test_a_vanished_directory_still_gives_the_message() -> None:
    error = DiskFull.of(OSError(errno.ENOSPC, "full"), "/no/such/dir", "then try again")
    assert error is not None
    assert error.message == (
        "no space left on the disk holding /no/such/dir: free some space there, then try again"
    )
