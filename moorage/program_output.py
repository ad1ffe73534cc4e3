"""Program output: what a workload's programs print (a container's logs, a health-check
command's output, a capture hook's, a drill check's), kept apart from Moorage's own words.

Programs print their secrets (``echo $DB_PASSWORD``, a dump's connection string), so their
output is for operators and admins only, like ``GET .../logs`` and env values. A viewer reads every
log and error Moorage keeps (a deployment's ``log`` and ``error``; a snapshot's ``log``,
``error`` and ``warnings``; a drill's; a restore's and a recovery point's ``error``), so
output is marked where it is written and left out where a viewer reads it:

- **Written.** ``marked`` (``lines``) puts each line of the output on a line of its own
  that starts with ``MARK``. A line break the program printed (``\\n``, ``\\r``, U+2028,
  any of ``str.splitlines``') ends the line there, and a ``MARK`` (or NUL) it printed is
  replaced: it can neither end its mark nor forge one. Output goes after the words that
  say what it is ("...; its last output:" and a line break), never inside a line.
- **Read.** ``shown`` gives an operator the text without the marks, and a viewer each run
  of marked lines as one ``HIDDEN`` line. On a line, everything from its first ``MARK`` to
  the line's end is output; what comes before (a time stamp, an indent) is Moorage's.
  Text joined after output on its line is hidden with it: too much, never too little.
  The API reads every such field through ``shown`` (``api/schemas/base.ProgramText``).
- **Kept.** Marked text is cut only at a line's start (``tail``): a cut inside a line
  would drop that line's mark and show the rest of it.

Never put output into a message, a log line or a row other than through ``marked``.
"""

from __future__ import annotations

from moorage.security.roles import Actor

MARK = "\ue000"
"""Starts each line of program output (a private-use code point: no text means it)."""
HIDDEN = "(program output: operators and admins only)"
"""What a viewer reads in place of each run of output lines."""
REPLACED = "\ufffd"
"""What a ``MARK`` or a NUL the program printed becomes."""


def lines(output: str) -> list[str]:
    """Each line of ``output`` (leading and trailing blank lines dropped), marked."""
    clean = output.replace(MARK, REPLACED).replace("\x00", REPLACED).strip()
    return [MARK + line for line in clean.splitlines()] if clean else []


def marked(output: str) -> str:
    """``output`` as Moorage keeps it: its lines marked, joined by ``\\n``; ``""`` for
    blank output."""
    return "\n".join(lines(output))


def revealed(text: str) -> str:
    """``text`` as an operator reads it: the output in it, without the marks."""
    return text.replace(MARK, "")


def redacted(text: str) -> str:
    """``text`` as a viewer reads it: from each line's ``MARK`` to its end left out, a run
    of such lines replaced by one ``HIDDEN`` after the first line's own words."""
    out: list[str] = []
    hiding = False
    for line in text.split("\n"):
        at = line.find(MARK)
        if at < 0:
            out.append(line)
            hiding = False
        elif not hiding:
            out.append(line[:at] + HIDDEN)
            hiding = True
    return "\n".join(out)


def shown(text: str, reader: Actor | None) -> str:
    """``text`` as ``reader`` may read it: revealed to an operator or an admin, redacted
    to anyone else (a viewer, or no reader known)."""
    if reader is not None and reader.can("operator"):
        return revealed(text)
    return redacted(text)


def tail(text: str, limit: int) -> str:
    """The end of ``text``, at most ``limit`` characters, cut at a line's start so that no
    kept line loses its mark (a single longer last line is left out whole)."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[-limit:]
    if text[-limit - 1] == "\n":
        return cut
    return cut[cut.find("\n") + 1 :] if "\n" in cut else ""
