"""What text Moorage accepts, and how untrusted text is written into a log line.

Text is checked where it comes in (``api/schemas.Body`` for request bodies,
``api/limits.PlainUrl`` for the URL), before anything parses or stores it. One
table says which characters a field may hold:

=============  ============  ===========  ============================
rule           NUL, lone     tab, LF, CR  other controls (C0, DEL, C1)
               surrogates
=============  ============  ===========  ============================
``LINE``       refused       refused      refused
``MULTILINE``  refused       kept         refused
``OPAQUE``     refused       kept         kept
=============  ============  ===========  ============================

- ``LINE`` (the default): names, slugs, ids, keys, paths, the URL's path and query:
  everything not named below.
- ``MULTILINE``: free text that may span lines: a project's description, and the
  string values of a kind's ``config`` (a Compose file, a command's arguments).
- ``OPAQUE``: data handed on byte for byte and never shown: env values (SPEC
  section 9) and passwords.

A NUL or a lone surrogate is never data: PostgreSQL cannot store either, a C string
ends at a NUL, and an environment variable cannot hold one. Object keys are always
``LINE``. Log lines escape every control character (``escape``), so nothing a client
sends can start a forged line.
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
_REFUSED = {
    LINE: re.compile(f"[{_CONTROLS}{_SURROGATES}]"),
    MULTILINE: re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_SURROGATES}]"),
    OPAQUE: re.compile(f"[\x00{_SURROGATES}]"),
}
_ESCAPED = re.compile(f"[{_CONTROLS}{_SURROGATES}]")


def refused(value: str, rule: TextRule = LINE) -> str | None:
    """The first character ``rule`` refuses in ``value``, or None."""
    found = _REFUSED[rule].search(value)
    return None if found is None else found.group()


def describe(char: str) -> str:
    """``U+000A (a line break)``: how an error names a refused character."""
    names = {"\x00": "a NUL", "\t": "a tab", "\n": "a line break", "\r": "a carriage return"}
    if "\ud800" <= char <= "\udfff":
        kind = "a lone surrogate"
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
                return escape(where), char
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
    """``value`` with every control character and lone surrogate written as a Python
    escape (``\\n``, ``\\x00``): one line, whatever it held."""
    return _ESCAPED.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


class _EscapedRecord(logging.LogRecord):
    def getMessage(self) -> str:
        return escape(super().getMessage())


def escape_log_records() -> None:
    """From now on every log record's message, whichever logger made it (uvicorn's too),
    is one line: its arguments cannot forge another. Tracebacks keep their lines."""
    logging.setLogRecordFactory(_EscapedRecord)
