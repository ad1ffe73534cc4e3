"""Making staged trees durable: one ``syncfs`` per filesystem, started early, finished once.

Fsyncing each of many small files costs a journal commit apiece (minutes for a
tree that extracts in seconds); ``syncfs(2)`` commits once and covers every file
and directory entry written. ``Flusher`` starts that writeback in the background
while the reader is still writing, so the final sync finds little left to do.
Where the platform has no ``syncfs``, every staged entry is fsynced instead.

Nothing here deletes or writes file data; it only asks the kernel to persist it.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import threading

_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ANY_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FLUSH_EVERY = 64 << 20  # bytes written between background writebacks


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


def has_syncfs() -> bool:
    return _libc() is not None


def syncfs(fd: int) -> bool:
    """Flush the whole filesystem holding ``fd``; False when the platform has no syncfs.

    Raises ``OSError`` when the kernel reports a write-back error (EIO, ENOSPC).
    """
    libc = _libc()
    if libc is None:
        return False
    if libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err))
    return True


def fsync_tree(root_fd: int) -> None:
    """Fsync every file and directory below ``root_fd``; symlinks and fifos are
    persisted by their directory's fsync."""
    stack = [os.dup(root_fd)]
    try:
        while stack:
            dir_fd = stack.pop()
            try:
                with os.scandir(dir_fd) as it:
                    entries = [
                        (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                        for e in it
                    ]
                for name, is_dir, is_file in entries:
                    if is_dir:
                        stack.append(os.open(name, _DIR_OPEN, dir_fd=dir_fd))
                    elif is_file:
                        fd = os.open(name, _ANY_OPEN, dir_fd=dir_fd)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        for fd in stack:
            os.close(fd)


def make_durable(roots: list[int]) -> None:
    """Persist everything below ``roots`` (open directory fds): syncfs once per
    filesystem, or fsync of every entry where syncfs is unsupported."""
    synced: set[int] = set()
    for fd in roots:
        device = os.fstat(fd).st_dev
        if device in synced:
            continue
        if syncfs(fd):
            synced.add(device)
        else:
            fsync_tree(fd)


class Flusher:
    """Starts writeback of staged data in the background every ``FLUSH_EVERY`` bytes.

    ``wrote(n)`` is called by the writer after each write; a background thread
    runs ``syncfs`` on the roots when enough has piled up. Errors there are kept
    and re-raised by ``close()``, which the final ``make_durable`` follows.
    """

    def __init__(self, roots: list[int]) -> None:
        by_device = {os.fstat(fd).st_dev: fd for fd in roots}
        self._roots = list(by_device.values())
        self._pending = 0
        self._wake = threading.Event()
        self._stop = False
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None
        if roots and has_syncfs():
            self._thread = threading.Thread(target=self._run, name="archive-flush", daemon=True)
            self._thread.start()

    def wrote(self, n: int) -> None:
        if self._thread is None:
            return
        self._pending += n
        if self._pending >= FLUSH_EVERY:
            self._pending = 0
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            try:
                for fd in self._roots:
                    syncfs(fd)
            except OSError as exc:
                self._error = exc
                return

    def close(self) -> None:
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join()
        if self._error is not None:
            raise self._error
