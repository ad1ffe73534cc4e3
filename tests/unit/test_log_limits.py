"""``log_limits``: a warning a client can repeat is written a window's worth of times and
then counted; INFO is never thinned; a long traceback keeps its ends."""

from __future__ import annotations

import logging
import sys

from moorage.log_limits import HEAD_LINES, TAIL_LINES, ShortTracebacks, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(
    msg: str, level: int = logging.WARNING, name: str = "uvicorn.error"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, (), None)


def test_a_repeated_warning_is_written_a_window_worth_then_counted() -> None:
    clock = Clock()
    throttle = Throttle(per_window=3, window_seconds=60, clock=clock)
    passed = [throttle.filter(_record("Unsupported upgrade request.")) for _ in range(100)]
    assert passed == [True] * 3 + [False] * 97
    clock.now = 61
    record = _record("Unsupported upgrade request.")
    assert throttle.filter(record)
    assert "97 more like this were not logged" in record.getMessage()


def test_templates_and_loggers_are_counted_apart() -> None:
    throttle = Throttle(per_window=1, clock=Clock())
    assert throttle.filter(_record("a"))
    assert throttle.filter(_record("b"))
    assert throttle.filter(_record("a", name="moorage.api"))
    assert not throttle.filter(_record("a"))


def test_the_arguments_do_not_make_a_new_template() -> None:
    throttle = Throttle(per_window=2, clock=Clock())
    records = [
        logging.LogRecord("moorage.api", logging.ERROR, __file__, 1, "error on %s", (p,), None)
        for p in ("/a", "/b", "/c")
    ]
    assert [throttle.filter(r) for r in records] == [True, True, False]


def test_info_and_debug_are_never_thinned() -> None:
    throttle = Throttle(per_window=1, clock=Clock())
    assert all(throttle.filter(_record("deploying", logging.INFO)) for _ in range(50))
    assert all(throttle.filter(_record("detail", logging.DEBUG)) for _ in range(50))


def _raise_deep(n: int) -> None:
    """A traceback of about ``5 * n`` lines: ``n`` chained exceptions (Python folds a
    plain recursion's repeated frames into one line)."""
    if not n:
        raise RecursionError("deep")
    try:
        _raise_deep(n - 1)
    except RecursionError as exc:
        raise RecursionError("deep") from exc


def _formatted(depth: int) -> str:
    try:
        _raise_deep(depth)
    except RecursionError:
        return ShortTracebacks("%(message)s").formatException(sys.exc_info())
    raise AssertionError("nothing raised")


def test_a_long_traceback_keeps_its_ends() -> None:
    lines = _formatted(40).splitlines()
    assert len(lines) == HEAD_LINES + TAIL_LINES + 1
    assert lines[0].startswith("Traceback")
    assert lines[-1] == "RecursionError: deep"
    assert "lines left out" in lines[HEAD_LINES]


def test_a_short_traceback_is_whole() -> None:
    text = _formatted(2)
    assert "left out" not in text and text.endswith("RecursionError: deep")
