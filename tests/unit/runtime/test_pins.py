"""``open_checked``: a path that changes while it is checked is refused with a message a
person can act on, never an internal error (the directory/link flip of issue 12)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from moorage.errors import EngineError
from moorage.runtime import pins


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOENT, errno.ELOOP, errno.ENOTDIR])
def test_a_path_that_changes_under_realpath_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def flipped(path: object, *args: object, **kwargs: object) -> str:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(pins.os.path, "realpath", flipped)
    with pytest.raises(EngineError, match="changed while it was checked"):
        pins.open_checked(tmp_path / "base" / "vol", tmp_path / "base")


def test_a_link_in_the_path_to_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "base" / "vol").symlink_to(tmp_path / "outside")
    with pytest.raises(EngineError, match="outside"):
        pins.open_checked(tmp_path / "base" / "vol", tmp_path / "base")


def test_a_plain_directory_below_its_base_opens(tmp_path: Path) -> None:
    (tmp_path / "base" / "vol").mkdir(parents=True)
    fd = pins.open_checked(tmp_path / "base" / "vol", tmp_path / "base")
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "base" / "vol"))
    finally:
        os.close(fd)
