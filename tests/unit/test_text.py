"""The text rules, one row per class of character, and log lines that stay one line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from moorage.text import (
    LINE,
    MULTILINE,
    OPAQUE,
    TextRule,
    escape,
    escape_log_records,
    first_refused,
    refused,
)

# character -> (refused by LINE, by MULTILINE, by OPAQUE)
ROWS = {
    "\x00": (True, True, True),
    "\ud800": (True, True, True),
    "\t": (True, False, False),
    "\n": (True, False, False),
    "\r": (True, False, False),
    "\x01": (True, True, False),
    "\x0b": (True, True, False),
    "\x1b": (True, True, False),
    "\x7f": (True, True, False),
    "\x85": (True, True, False),
    "\x9f": (True, True, False),
    " ": (False, False, False),
    "\xa0": (False, False, False),
    "é": (False, False, False),
    "\u2028": (False, False, False),
    "😀": (False, False, False),
}


@pytest.mark.parametrize("char", list(ROWS))
def test_each_rule_refuses_its_characters(char: str) -> None:
    for rule, expected in zip((LINE, MULTILINE, OPAQUE), ROWS[char], strict=True):
        assert (refused(f"a{char}b", rule) == char) is expected, (rule, char)


def test_a_tree_is_walked_keys_by_line() -> None:
    tree = {"compose": "services:\n\tweb: {}\n", "command": ["sh", "-c", "a\nb"]}
    assert first_refused(tree, MULTILINE) is None
    assert first_refused(tree, LINE) == ("compose", "\n")
    assert first_refused({"a": [{"b\n": "x"}]}, MULTILINE) == ("a[0].b\\n", "\n")
    assert first_refused({"a": [1, None, True, {"b": "\x00"}]}, OPAQUE) == ("a[3].b", "\x00")
    assert first_refused("plain", TextRule("line")) is None


def test_escape_makes_one_line() -> None:
    assert escape("a\nb\r\x00c\x1b\x85\ud800 é") == "a\\nb\\r\\x00c\\x1b\\x85\\ud800 é"


@pytest.fixture
def escaped_records() -> Iterator[logging.Logger]:
    factory = logging.getLogRecordFactory()
    escape_log_records()
    logger = logging.getLogger("moorage.test.text")
    try:
        yield logger
    finally:
        logging.setLogRecordFactory(factory)


def test_a_log_line_cannot_be_forged(escaped_records: logging.Logger) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    escaped_records.addHandler(handler)
    try:
        escaped_records.warning("unhandled error on %s", "/hooks/a\nERROR forged line")
    finally:
        escaped_records.removeHandler(handler)
    assert out.getvalue() == "WARNING unhandled error on /hooks/a\\nERROR forged line\n"
