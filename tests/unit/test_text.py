"""The text rules, one row per class of character, and log lines that stay one line and
in the order they are read."""

from __future__ import annotations

import io
import logging
import re
import sys
import unicodedata
from collections.abc import Iterator

import pytest

from moorage.text import (
    BIDI,
    FORMAT,
    LINE,
    MULTILINE,
    OPAQUE,
    TextRule,
    describe,
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
    # bidi controls (Trojan Source): refused wherever text is shown
    "\u202e": (True, True, False),
    "\u202a": (True, True, False),
    "\u2066": (True, True, False),
    "\u2069": (True, True, False),
    "\u200e": (True, True, False),
    "\u200f": (True, True, False),
    "\u061c": (True, True, False),
    # other invisible format characters (Cf): refused in names, kept in prose
    "\u200b": (True, False, False),
    "\u200d": (True, False, False),
    "\u2060": (True, False, False),
    "\ufeff": (True, False, False),
    "\xad": (True, False, False),
    "\U000e0041": (True, False, False),
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


def test_line_refuses_every_format_character_python_knows() -> None:
    """``FORMAT`` is category Cf of the running Python's Unicode database; a code point it
    adds beyond that is one a newer Unicode made Cf (still unassigned here)."""
    table = re.compile(f"[{FORMAT}]")
    listed = {c for c in range(sys.maxunicode + 1) if table.match(chr(c))}
    cf = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    assert sorted(f"U+{c:04X}" for c in cf - listed) == []
    assert all(unicodedata.category(chr(c)) == "Cn" for c in listed - cf)
    bidi = {c for c in range(0x3000) if re.fullmatch(f"[{BIDI}]", chr(c))}
    assert bidi == {0x61C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
    assert bidi <= cf


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\n", "U+000A (a line break)"),
        ("\x85", "U+0085 (a control character)"),
        ("\u202e", "U+202E (a bidi control)"),
        ("\u061c", "U+061C (a bidi control)"),
        ("\u200b", "U+200B (an invisible format character)"),
        ("\U000e0041", "U+E0041 (an invisible format character)"),
    ],
)
def test_an_error_names_the_character_without_holding_it(char: str, named: str) -> None:
    assert describe(char) == named


def test_a_tree_is_walked_keys_by_line() -> None:
    tree = {"compose": "services:\n\tweb: {}\n", "command": ["sh", "-c", "a\nb"]}
    assert first_refused(tree, MULTILINE) is None
    assert first_refused(tree, LINE) == ("compose", "\n")
    assert first_refused({"a": [{"b\n": "x"}]}, MULTILINE) == ("a[0].b\\n", "\n")
    assert first_refused({"a": [1, None, True, {"b": "\x00"}]}, OPAQUE) == ("a[3].b", "\x00")
    assert first_refused("plain", TextRule("line")) is None
    assert first_refused({"compose": "# \u202e", "k\u200b": "x"}, MULTILINE) == (
        "compose",
        "\u202e",
    )
    assert first_refused({"label": "\U0001f469\u200d\U0001f4bb", "k\u200b": "x"}, MULTILINE) == (
        "k\\u200b",
        "\u200b",
    )


def test_escape_makes_one_line() -> None:
    assert escape("a\nb\r\x00c\x1b\x85\ud800 é") == "a\\nb\\r\\x00c\\x1b\\x85\\ud800 é"
    # A bidi control would reorder what the operator reads; a ZWJ only joins an emoji.
    assert escape("login \u202eadmin\u2066") == "login \\u202eadmin\\u2066"
    assert escape("\U0001f469\u200d\U0001f4bb") == "\U0001f469\u200d\U0001f4bb"


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
