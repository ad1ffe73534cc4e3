"""The reader's open directories, one stack per volume: where a member may land.

A member's parents must be directories this archive made and that are still
being filled: a directory's members are contiguous, so once the stream moves on
a directory is finished (its metadata goes on then, after its children) and
nothing may be added to it again. A name that is a file, symlink or fifo is
never a parent, so nothing is written through a link. The fds here all descend
from the staging roots the caller opened; they are -1 when only verifying.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from moorage.snapshots.archive import extract
from moorage.snapshots.archive.format import fail, shown
from moorage.snapshots.archive.tar import Header

KIND_NAMES = {"d": "a directory", "f": "a file", "l": "a symlink", "p": "a fifo"}


@dataclass
class Dir:
    """An open directory on the way down to the current member."""

    name: bytes
    fd: int  # -1 when only verifying
    header: Header | None = None  # its metadata goes on last, after its children
    children: dict[bytes, str] = field(default_factory=dict)  # name -> d, f, l or p


@dataclass
class Volume:
    index: int
    name: str
    stack: list[Dir]
    root_declared: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def close(directory: Dir, *, fsync_each: bool) -> None:
    """Finish a directory: its metadata goes on last, after its children."""
    if directory.fd < 0:
        return
    extract.close_dir(
        directory.fd,
        directory.header,
        root=not directory.name,  # volume roots belong to the caller
        fsync_each=fsync_each,
    )


def close_below_root(volume: Volume, *, fsync_each: bool) -> None:
    """Finish every directory still open in ``volume`` but its root, deepest first."""
    while len(volume.stack) > 1:
        close(volume.stack.pop(), fsync_each=fsync_each)


def abandon(volume: Volume) -> None:
    """On failure: close what is open, finish nothing (the caller removes staging)."""
    while len(volume.stack) > 1:
        directory = volume.stack.pop()
        if directory.fd >= 0:
            os.close(directory.fd)


def descend(volume: Volume, parents: list[bytes], raw: bytes, *, fsync_each: bool) -> Dir:
    """The open directory for ``parents``: only directories this archive made, and
    only while they are still being filled (a directory's members are contiguous)."""
    stack = volume.stack
    common = 0
    while (
        common < len(parents)
        and common + 1 < len(stack)
        and stack[common + 1].name == parents[common]
    ):
        common += 1
    while len(stack) > common + 1:
        close(stack.pop(), fsync_each=fsync_each)
    if common < len(parents):
        missing = shown(b"/".join(parents[: common + 1]))
        kind = stack[-1].children.get(parents[common])
        if kind is None:
            fail(f"member {shown(raw)}: its directory {missing} is not in the archive yet")
        if kind != "d":
            fail(f"member {shown(raw)}: {missing} is {KIND_NAMES[kind]}, not a directory")
        fail(
            f"member {shown(raw)}: directory {missing} was already finished; "
            "a directory's members must be contiguous"
        )
    return stack[-1]
