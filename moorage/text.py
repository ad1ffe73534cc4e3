"""What text Moorage accepts, and how untrusted text is written into a log line.

Text is checked where it comes in (``api/schemas.Body`` for request bodies,
``api/limits.PlainUrl`` for the URL), before anything parses or stores it. One
table says which characters a field may hold:

=============  ============  ===========  ============================  =======  ==========
rule           NUL, lone     tab, LF, CR  other controls (C0, DEL, C1)  bidi     other
               surrogates                                               controls format (Cf)
=============  ============  ===========  ============================  =======  ==========
``LINE``       refused       refused      refused                       refused  refused
``MULTILINE``  refused       kept         refused                       refused  kept
``OPAQUE``     refused       kept         kept                          kept     kept
=============  ============  ===========  ============================  =======  ==========

- ``LINE`` (the default): names, slugs, ids, keys, paths, hosts, usernames, the URL's
  path and query: everything not named below.
- ``MULTILINE``: free text that may span lines: a project's description, and the
  string values of a kind's ``config`` (a Compose file, a command's arguments).
- ``OPAQUE``: data handed on byte for byte and never shown: env values (SPEC
  section 9) and passwords.

A NUL or a lone surrogate is never data: PostgreSQL cannot store either, a C string
ends at a NUL, and an environment variable cannot hold one. Bidi controls (``BIDI``:
U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) make text display in another
order than it is read (Trojan Source, CVE-2021-42574), so no text that is shown takes
them. The other format characters (Unicode category Cf: U+200B zero-width space,
U+FEFF, U+00AD soft hyphen, the tags) are invisible: in a name or a path they make two
values that look the same differ, so ``LINE`` refuses them; prose keeps them (a ZWJ
joins an emoji). Object keys are always ``LINE``. Log lines escape every control
character and bidi control (``escape``), so nothing a client sends can start a forged
line or reorder one.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import Any


class TextRule(StrEnum):
    LINE = "line"
    MULTILINE = "multiline"
    OPAQUE = "opaque"


LINE, MULTILINE, OPAQUE = TextRule.LINE, TextRule.MULTILINE, TextRule.OPAQUE
SCHEMA_KEY = "x-moorage-text"
"""The OpenAPI extension naming a field's rule when it is not ``LINE``."""

_CONTROLS = "\x00-\x1f\x7f-\x9f"
_SURROGATES = "\ud800-\udfff"
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""The bidi controls, as a regular-expression class: marks, embeddings, overrides, isolates."""
FORMAT = (
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
"""Unicode category Cf (format characters; the bidi controls among them), as of Unicode
15.1; ``tests/unit/test_text.py`` holds it to the running Python's ``unicodedata``."""
_REFUSED = {
    LINE: re.compile(f"[{_CONTROLS}{_SURROGATES}{FORMAT}]"),
    MULTILINE: re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_SURROGATES}{BIDI}]"),
    OPAQUE: re.compile(f"[\x00{_SURROGATES}]"),
}
_BIDI = re.compile(f"[{BIDI}]")
_ESCAPED = re.compile(f"[{_CONTROLS}{_SURROGATES}{BIDI}]")


def refused(value: str, rule: TextRule = LINE) -> str | None:
    """The first character ``rule`` refuses in ``value``, or None."""
    found = _REFUSED[rule].search(value)
    return None if found is None else found.group()


def describe(char: str) -> str:
    """``U+000A (a line break)``: how an error names a refused character."""
    names = {"\x00": "a NUL", "\t": "a tab", "\n": "a line break", "\r": "a carriage return"}
    if "\ud800" <= char <= "\udfff":
        kind = "a lone surrogate"
    elif _BIDI.fullmatch(char):
        kind = "a bidi control"
    elif char > "\x9f":
        kind = "an invisible format character"
    else:
        kind = names.get(char, "a control character")
    return f"U+{ord(char):04X} ({kind})"


def first_refused(value: Any, rule: TextRule, path: str = "") -> tuple[str, str] | None:
    """(where, character) of the first refused character in a JSON-like tree: strings by
    ``rule``, object keys always by ``LINE``."""
    if isinstance(value, str):
        char = refused(value, rule)
        return None if char is None else (path, char)
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (char := refused(key, LINE)) is not None:
                return _REFUSED[LINE].sub(_escaped, where), char  # named, not echoed
            found = first_refused(item, rule, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = first_refused(item, rule, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def escape(value: str) -> str:
    """``value`` with every control character, lone surrogate and bidi control written as
    a Python escape (``\\n``, ``\\x00``, ``\\u202e``): one line, shown in the order
    it is read, whatever it held."""
    return _ESCAPED.sub(_escaped, value)


def _escaped(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")


class _EscapedRecord(logging.LogRecord):
    def getMessage(self) -> str:
        return escape(super().getMessage())


def escape_log_records() -> None:
    """From now on every log record's message, whichever logger made it (uvicorn's too),
    is one line: its arguments cannot forge another. Tracebacks keep their lines."""
    logging.setLogRecordFactory(_EscapedRecord)
