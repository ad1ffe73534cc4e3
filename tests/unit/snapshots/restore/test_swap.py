"""swap.converge on real directories: a crash before any rename of a swap or of its
undo leaves a state from which converging either way puts the wanted tree at the live
path, keeps the other one whole beside it, and deletes nothing. Both swap modes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from moorage.snapshots.restore import swap
from moorage.snapshots.restore.swap import SwapError, converge, inode, supports_exchange

MODES = ["exchange", "rename"]


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


@dataclass
class Trees:
    live: Path
    staged: Path
    aside: Path
    old: int
    new: int

    @property
    def spares(self) -> list[Path]:
        return [self.staged, self.aside]

    def to(self, want: str, mode: str) -> None:
        wanted, other = (self.new, self.old) if want == "new" else (self.old, self.new)
        converge(self.live, wanted, other, self.spares, use_exchange=mode == "exchange")

    def where(self) -> dict[str, str]:
        """Which tree each path holds, read from the files inside (not from inodes)."""
        found = {}
        for path in (self.live, *self.spares):
            if path.exists():
                found[path.name] = (path / "tree").read_text()
        return found


@pytest.fixture
def trees(tmp_path: Path) -> Trees:
    live, staged, aside = tmp_path / "data", tmp_path / ".r-data.new", tmp_path / ".r-data.old"
    for path, label in ((live, "old"), (staged, "new")):
        (path / "deep").mkdir(parents=True)
        (path / "tree").write_text(label)
        (path / "deep" / "file").write_bytes(label.encode() * 1000)
    old, new = inode(live), inode(staged)
    assert old is not None and new is not None
    return Trees(live, staged, aside, old, new)


def skip_without_exchange(mode: str, where: Path) -> None:
    if mode == "exchange" and not supports_exchange(where):
        pytest.skip("RENAME_EXCHANGE is not supported on this filesystem")


@contextmanager
def crash_after(monkeypatch: pytest.MonkeyPatch, allowed: int) -> Iterator[None]:
    """Let ``allowed`` renames or exchanges happen, then die before the next one."""
    done = 0
    real_rename, real_exchange = os.rename, swap.exchange

    def step() -> None:
        nonlocal done
        if done == allowed:
            raise Crash
        done += 1

    def rename(a: Path, b: Path) -> None:
        step()
        real_rename(a, b)

    def exchange(a: Path, b: Path) -> None:
        step()
        real_exchange(a, b)

    with monkeypatch.context() as patch:
        patch.setattr(swap.os, "rename", rename)
        patch.setattr(swap, "exchange", exchange)
        try:
            yield
        except Crash:
            pass


def assert_settled(t: Trees, want: str) -> None:
    held = t.where()
    assert held.pop(t.live.name) == want
    # The other tree is whole, at exactly one of the spares; nothing was deleted.
    assert list(held.values()) == ["old" if want == "new" else "new"]
    other = next(p for p in t.spares if p.exists())
    assert (other / "deep" / "file").read_bytes() == held[other.name].encode() * 1000
    assert inode(t.live) == (t.new if want == "new" else t.old)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("allowed", [0, 1, 2])
@pytest.mark.parametrize("recover_to", ["new", "old"])
def test_a_swap_cut_anywhere_converges_either_way(
    trees: Trees, monkeypatch: pytest.MonkeyPatch, mode: str, allowed: int, recover_to: str
) -> None:
    skip_without_exchange(mode, trees.live.parent)
    with crash_after(monkeypatch, allowed):
        trees.to("new", mode)
    if mode == "rename" and allowed == 1:
        assert not trees.live.exists()  # cut between the two renames: nothing at live
    trees.to(recover_to, mode)
    assert_settled(trees, recover_to)
    trees.to(recover_to, mode)  # idempotent: a second run changes nothing
    assert_settled(trees, recover_to)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("allowed", [0, 1, 2])
def test_an_undo_cut_anywhere_still_converges(
    trees: Trees, monkeypatch: pytest.MonkeyPatch, mode: str, allowed: int
) -> None:
    skip_without_exchange(mode, trees.live.parent)
    trees.to("new", mode)
    with crash_after(monkeypatch, allowed):
        trees.to("old", mode)
    trees.to("old", mode)
    assert_settled(trees, "old")
    trees.to("new", mode)  # and forward again from there
    assert_settled(trees, "new")


@pytest.mark.parametrize("mode", MODES)
def test_the_swap_itself_is_one_exchange_or_two_renames(
    trees: Trees, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    skip_without_exchange(mode, trees.live.parent)
    seen: list[str] = []
    real_rename, real_exchange = os.rename, swap.exchange
    monkeypatch.setattr(swap.os, "rename", lambda a, b: (seen.append("rename"), real_rename(a, b)))
    monkeypatch.setattr(
        swap, "exchange", lambda a, b: (seen.append("exchange"), real_exchange(a, b))
    )
    trees.to("new", mode)
    assert seen == (["exchange"] if mode == "exchange" else ["rename", "rename"])
    assert_settled(trees, "new")
    # In exchange mode the live path is never empty, and the old tree waits at `staged`.
    assert (trees.staged if mode == "exchange" else trees.aside).exists()


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_directory_at_the_live_path_is_left_alone(trees: Trees, mode: str) -> None:
    skip_without_exchange(mode, trees.live.parent)
    trees.live.rename(trees.live.parent / "moved-by-someone")
    trees.live.mkdir()
    (trees.live / "tree").write_text("someone else's")
    before = sorted(os.listdir(trees.live.parent))
    with pytest.raises(SwapError):
        trees.to("new", mode)
    assert sorted(os.listdir(trees.live.parent)) == before
    assert (trees.live / "tree").read_text() == "someone else's"


def test_a_missing_wanted_tree_is_an_error_and_moves_nothing(trees: Trees) -> None:
    gone = trees.staged.rename(trees.live.parent / "elsewhere")
    with pytest.raises(SwapError):
        trees.to("new", "rename")
    assert trees.where() == {"data": "old"}
    assert (gone / "tree").read_text() == "new"


def test_the_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    supports_exchange(tmp_path)
    assert list(tmp_path.iterdir()) == []
