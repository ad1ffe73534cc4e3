"""Pinned bind sources: a container mounts the directory Moorage checked, not a path.

Docker resolves a bind source path when the container starts, following symlinks,
so a path checked a moment earlier can point elsewhere by then (a component swapped
for a link). A pin closes that window: the path is resolved, required to stay below
its base, walked component by component with ``O_PATH|O_NOFOLLOW`` (a link anywhere
fails the walk), and the directory the walk reached is bind-mounted, through
``/proc/self/fd/<n>``, onto ``<pins>/<container>/<n>``. Docker then binds the pin,
which only root can change. Pins live on a tmpfs (``MOORAGE_RUN_DIR``): after a
reboot they are gone, so a container cannot start on an empty stand-in directory
(``--mount`` binds fail on a missing path) until Moorage pins again.

This module must never delete anything below a pin (only ``umount2`` and ``rmdir``
of the empty mount point), and never pin a path that leaves its base.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import logging
import os
from pathlib import Path

from moorage.errors import EngineError

log = logging.getLogger("moorage.pins")

_MS_BIND = 4096
_MNT_DETACH = 2
_WALK = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
    ]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def _mount(
    source: bytes, target: bytes, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    if _libc().mount(source, target, fstype, flags, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target.decode(errors="replace"))


def _umount(target: Path) -> bool:
    """Detach whatever is mounted at ``target``; False when nothing was."""
    if _libc().umount2(bytes(target), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return False
        raise OSError(err, os.strerror(err), str(target))
    return True


def open_checked(source: Path, base: Path) -> int:
    """An ``O_PATH`` fd of the directory at ``source``, reached without following links.

    ``source`` is resolved once; the result must lie strictly below ``base`` (itself
    resolved), then every component of it is opened with ``O_NOFOLLOW`` from ``/``.
    Raises ``EngineError`` when the path leaves its base, is not a directory, or a
    component is (or became) a link.
    """
    try:
        real = Path(os.path.realpath(source))
        real_base = Path(os.path.realpath(base))
    except OSError as exc:  # a component swapped between the lstat and readlink of realpath
        raise EngineError(
            f"volume path {source} changed while it was checked ({exc.strerror}); "
            "nothing was mounted"
        ) from None
    if real == real_base or not real.is_relative_to(real_base):
        raise EngineError(f"volume path {source} resolves to {real}, outside {real_base}")
    fd = os.open("/", _WALK)
    try:
        for part in real.parts[1:]:
            try:
                child = os.open(part, _WALK, dir_fd=fd)
            except OSError as exc:
                raise EngineError(
                    f"volume path {source}: {part!r} changed while it was checked "
                    f"({exc.strerror}); nothing was mounted"
                ) from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


class Pins:
    """The pins of one Moorage instance: ``<run_dir>/pins/<instance>/<container>/<n>``.

    ``enabled`` is False where mounts are not permitted (not root): binds then use
    the checked path itself, and the server log says so once.
    """

    def __init__(self, run_dir: Path, instance: str) -> None:
        digest = hashlib.sha256(instance.encode()).hexdigest()[:16]
        self.run_dir = run_dir
        self.root = run_dir / "pins" / digest
        self.enabled = os.geteuid() == 0
        self._tmpfs_checked = False
        if not self.enabled:
            log.warning("not root: volume binds are not pinned (a path swap could redirect one)")

    def _ensure_tmpfs(self) -> None:
        """Pins live on a tmpfs, so none outlives a reboot (see the module docstring)."""
        if self._tmpfs_checked:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(self.run_dir):
            _mount(b"tmpfs", bytes(self.run_dir), b"tmpfs", 0, b"mode=0700")
        self._tmpfs_checked = True

    def path(self, container: str, index: int) -> Path:
        return self.root / container / str(index)

    def pin(self, container: str, index: int, source: Path, base: Path) -> Path:
        """Mount the checked directory of ``source`` at the container's pin; answer the pin.

        Re-pinning replaces the previous mount (a restore swapped the directory).
        Raises ``EngineError`` when the check fails or the mount is refused.
        """
        if not self.enabled:
            open_fd = open_checked(source, base)
            os.close(open_fd)
            return source
        try:
            self._ensure_tmpfs()
        except OSError as exc:
            raise EngineError(f"mounting a tmpfs at {self.run_dir}: {exc.strerror}") from None
        target = self.path(container, index)
        target.mkdir(parents=True, exist_ok=True)
        fd = open_checked(source, base)
        try:
            while _umount(target):
                pass  # stacked pins from earlier refreshes
            _mount(f"/proc/self/fd/{fd}".encode(), bytes(target), None, _MS_BIND, None)
        except OSError as exc:
            raise EngineError(f"pinning volume {source} for {container}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return target

    def unpin(self, container: str) -> None:
        """Detach and remove every pin of ``container`` (never deletes what they show)."""
        folder = self.root / container
        if not folder.is_dir():
            return
        for pin in folder.iterdir():
            while _umount(pin):
                pass
            try:
                pin.rmdir()
            except OSError as exc:
                log.warning("could not remove pin %s: %s", pin, exc)
        try:
            folder.rmdir()
        except OSError as exc:
            log.warning("could not remove %s: %s", folder, exc)

    def containers(self) -> list[str]:
        """Names of the containers that have pins."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())
