"""Bounds on the log a client can cause (issue 12: a request with an ``Upgrade`` header
made uvicorn write two warnings, and a tester grew the log by 94 KB/s from one
connection; a 500-deep body raised a ``RecursionError`` whose traceback was 3,000 lines).

- ``Throttle``, a ``logging.Filter`` for the server's handlers: records of WARNING or
  above are counted per (logger, message template); past ``per_window`` in a
  ``window_seconds`` window they are dropped, and the first one written in a later
  window says how many were. INFO and below pass untouched: a client cannot cause them
  in bulk (there is no access log), and the deploy workers' progress must not be thinned.
- ``ShortTracebacks``, the handlers' formatter: a traceback keeps its first
  ``HEAD_LINES`` and last ``TAIL_LINES`` lines (where it was raised and why), and says
  how many were left out between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PER_WINDOW = 10
WINDOW_SECONDS = 60.0
HEAD_LINES = 20
TAIL_LINES = 40
MAX_KEYS = 1000
"""Templates tracked at once; past it the oldest window is forgotten (a template is the
format string, never the arguments, so this many means code paths, not clients)."""


@dataclass
class _Window:
    start: float
    written: int = 1
    dropped: int = 0


class Throttle(logging.Filter):
    """At most ``per_window`` records per (logger, template) and window, WARNING and up."""

    def __init__(
        self,
        per_window: int = PER_WINDOW,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.per_window = per_window
        self.window_seconds = window_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.start >= self.window_seconds:
                if window is None and len(self._windows) >= MAX_KEYS:
                    del self._windows[min(self._windows, key=lambda k: self._windows[k].start)]
                self._windows[key] = _Window(now)
                if window is not None and window.dropped:
                    record.msg = f"{record.msg} [{window.dropped} more like this were not logged]"
                return True
            if window.written < self.per_window:
                window.written += 1
                return True
            window.dropped += 1
            return False


class ShortTracebacks(logging.Formatter):
    """A formatter whose tracebacks keep their first ``HEAD_LINES`` and last
    ``TAIL_LINES`` lines."""

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        lines = text.splitlines()
        if len(lines) <= HEAD_LINES + TAIL_LINES:
            return text
        left = len(lines) - HEAD_LINES - TAIL_LINES
        return "\n".join(
            [*lines[:HEAD_LINES], f"  ... {left} lines left out ...", *lines[-TAIL_LINES:]]
        )


def bound_handlers(fmt: str, logger: logging.Logger | None = None) -> Throttle:
    """Give every handler of ``logger`` (the root one by default) one shared
    ``Throttle`` and a ``ShortTracebacks`` formatter of format ``fmt``."""
    throttle = Throttle()
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(throttle)
        handler.setFormatter(ShortTracebacks(fmt))
    return throttle
