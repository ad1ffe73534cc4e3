"""``snapshots.capture._checked_root``: a capture reads the directory it checked when it
started. A path component swapped for a link afterwards (by a ``before`` hook, or by a
container with a component of the path in its volume) does not make it read elsewhere;
a link there when it starts fails the capture with the volume's name. The kind: every
component of the path, the volume directory itself, and a link to inside or outside
the base."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from moorage.errors import MoorageError
from moorage.plugins.spec import VolumeMount
from moorage.snapshots.capture import _checked_root, _tree_bytes


def _volume(base: Path, host_path: Path, scope: str = "stage") -> VolumeMount:
    return VolumeMount(
        name="data",
        scope=scope,
        host_path=host_path,
        target="/data",
        read_only=False,
        source="data",
        base=base,
    )


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``base/p/s/data/file`` ("checked"), and the same path below ``elsewhere``, outside
    the base, holding "secret": a link swapped in for any component leads there."""
    base = tmp_path / "base"
    elsewhere = tmp_path / "elsewhere"
    for root, text in ((base, "checked"), (elsewhere, "secret")):
        (root / "p" / "s" / "data").mkdir(parents=True)
        (root / "p" / "s" / "data" / "file").write_text(text)
    return base, base / "p" / "s" / "data", elsewhere


def _component(base: Path, volume: Path, elsewhere: Path, index: int) -> tuple[Path, Path]:
    """The ``index``-th component below the base (project, stage, volume) and its twin
    below ``elsewhere``."""
    rel = Path(*volume.relative_to(base).parts[: index + 1])
    return base / rel, elsewhere / rel


def _swap_for_link(path: Path, target: Path) -> Path:
    moved = path.with_name(path.name + ".moved")
    path.rename(moved)
    path.symlink_to(target)
    return moved


@pytest.mark.parametrize("component", [0, 1, 2], ids=["project", "stage", "volume"])
def test_a_component_swapped_after_the_check_is_not_followed(
    tree: tuple[Path, Path, Path], component: int
) -> None:
    base, volume, elsewhere = tree
    with contextlib.ExitStack() as held:
        root = _checked_root(_volume(base, volume), held)
        swapped, twin = _component(base, volume, elsewhere, component)
        _swap_for_link(swapped, twin)
        assert (volume / "file").read_text() == "secret"  # the path now leads out
        assert (root / "file").read_text() == "checked"
        assert _tree_bytes(root) == len("checked")
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # as both writer passes open it
        try:
            assert os.listdir(fd) == ["file"]
        finally:
            os.close(fd)


@pytest.mark.parametrize("component", [0, 1, 2], ids=["project", "stage", "volume"])
def test_a_link_out_of_the_base_when_the_capture_starts_fails_it(
    tree: tuple[Path, Path, Path], component: int
) -> None:
    base, volume, elsewhere = tree
    swapped, twin = _component(base, volume, elsewhere, component)
    _swap_for_link(swapped, twin)
    with contextlib.ExitStack() as held, pytest.raises(MoorageError, match="volume data"):
        _checked_root(_volume(base, volume), held)


@pytest.mark.parametrize("component", [0, 1, 2], ids=["project", "stage", "volume"])
def test_a_link_within_the_base_is_resolved_once_at_the_start(
    tree: tuple[Path, Path, Path], component: int
) -> None:
    """As pins do (``runtime/pins.open_checked``): the path is resolved once, and the
    directory reached is what is read, even if the link changes afterwards."""
    base, volume, elsewhere = tree
    swapped, twin = _component(base, volume, elsewhere, component)
    moved = _swap_for_link(swapped, swapped.with_name(swapped.name + ".moved"))
    with contextlib.ExitStack() as held:
        root = _checked_root(_volume(base, volume), held)
        swapped.unlink()
        swapped.symlink_to(twin)
        assert (root / "file").read_text() == "checked"
    assert moved.exists()


def test_the_checked_directory_is_released_after_the_capture(
    tree: tuple[Path, Path, Path],
) -> None:
    base, volume, _ = tree
    with contextlib.ExitStack() as held:
        root = _checked_root(_volume(base, volume), held)
        fd = int(root.name)
        os.fstat(fd)
    with pytest.raises(OSError):
        os.fstat(fd)


def test_an_absolute_volume_is_read_at_the_admins_path(tree: tuple[Path, Path, Path]) -> None:
    _, _, elsewhere = tree
    link = elsewhere.parent / "admin-link"
    link.symlink_to(elsewhere)  # an admin's path may hold links of the admin's own
    with contextlib.ExitStack() as held:
        root = _checked_root(_volume(Path("/"), link, scope="absolute"), held)
    assert root == link
