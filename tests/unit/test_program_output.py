"""``moorage.program_output``: what a program prints is marked line by line where it is
written, and a viewer reads none of it, whatever the program printed: a line break of any
kind, a carriage return, U+2028, a NUL or Moorage's mark itself. An operator reads it as
printed (its lines joined by ``\\n``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.program_output import (
    HIDDEN,
    MARK,
    REPLACED,
    lines,
    marked,
    redacted,
    revealed,
    shown,
    tail,
)
from moorage.security.roles import Actor
from moorage.services.deployment_runs import stamped

BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
"""Every line boundary ``str.splitlines`` knows: a program may print any of them."""
PRINTED = st.text(
    alphabet=st.one_of(
        st.sampled_from([b for b in BREAKS if len(b) == 1] + [MARK, "\x00", " ", "\t"]),
        st.characters(),
    ),
    max_size=80,
)
WORDS = st.text(
    alphabet=st.characters(blacklist_characters=["\n", MARK], blacklist_categories=["Cs"]),
    max_size=40,
)
"""Moorage's own words on a line: anything but a line break or the mark."""


def _actor(role: str) -> Actor:
    return Actor(user_id="u", username=role, role=role, via="token")


@pytest.mark.parametrize("brk", BREAKS)
def test_each_line_break_a_program_prints_starts_a_marked_line(brk: str) -> None:
    assert lines(f"db password{brk}is hunter2") == [f"{MARK}db password", f"{MARK}is hunter2"]
    said = f"hook exited 1; its output:\n{marked(f'one{brk}two')}"
    assert redacted(said) == f"hook exited 1; its output:\n{HIDDEN}"
    assert revealed(said) == "hook exited 1; its output:\none\ntwo"


def test_a_printed_mark_or_nul_is_replaced_and_blank_output_is_nothing() -> None:
    assert marked(f"{MARK}13:00:00 deploy succeeded\x00") == (
        f"{MARK}{REPLACED}13:00:00 deploy succeeded{REPLACED}"
    )
    assert marked("") == "" and marked(" \n\u2028\r\n ") == "" and lines("\n") == []
    assert marked("\n\nfirst\n\nlast\n\n") == f"{MARK}first\n{MARK}\n{MARK}last"


@given(WORDS, PRINTED)
def test_a_viewer_reads_none_of_the_output_an_operator_all_of_it(words: str, out: str) -> None:
    said = f"{words}; its output:\n{marked(out)}"
    expect = f"{words}; its output:" + (f"\n{HIDDEN}" if out.strip() else "\n")
    assert redacted(said) == expect
    kept = out.replace(MARK, REPLACED).replace("\x00", REPLACED).strip()
    assert revealed(said) == f"{words}; its output:\n" + "\n".join(kept.splitlines())
    assert MARK not in redacted(said) and MARK not in revealed(said)


def _stamped(line: str) -> str:
    """A log line as ``deployment_runs.stamped`` writes it, at a fixed time."""
    return f"10:00:00 {line.rstrip()}\n"


@given(st.lists(st.tuples(WORDS, PRINTED), max_size=6))
def test_a_log_of_stamped_lines_keeps_moorages_words_and_none_of_the_output(
    steps: list[tuple[str, str]],
) -> None:
    """A log as ``DeploymentLog`` and a capture write it: Moorage's line, then output."""
    log = expected = ""
    for words, out in steps:
        log += _stamped(words) + "".join(_stamped(f"  {line}") for line in lines(out))
        expected += _stamped(words) + (_stamped(f"  {HIDDEN}") if lines(out) else "")
    assert redacted(log) == expected
    assert stamped("x").endswith(" x\n") and len(stamped("x")) == len(_stamped("x"))


def test_a_run_of_output_lines_is_one_placeholder_after_the_first_lines_own_words() -> None:
    log = (
        "10:00:00 before hook: started\n"
        f"10:00:01   {MARK}dumping\n"
        f"10:00:01   {MARK}PGPASSWORD=hunter2\n"
        "10:00:02 before hook exited 0\n"
    )
    assert redacted(log) == (
        f"10:00:00 before hook: started\n10:00:01   {HIDDEN}\n10:00:02 before hook exited 0\n"
    )


def test_words_joined_after_output_on_its_line_are_hidden_with_it() -> None:
    """Too much, never too little: a recovery point joins its parts' reasons with "; "."""
    joined = f"a: hook exited 1; its output:\n{marked('hunter2')}; b: gone"
    assert redacted(joined) == f"a: hook exited 1; its output:\n{HIDDEN}"


def test_operators_and_admins_read_it_viewers_and_nobody_known_do_not() -> None:
    said = f"exited 3; its last output:\n{marked('hunter2')}"
    assert (
        shown(said, _actor("operator"))
        == shown(said, _actor("admin"))
        == ("exited 3; its last output:\nhunter2")
    )
    assert (
        shown(said, _actor("viewer"))
        == shown(said, None)
        == f"exited 3; its last output:\n{HIDDEN}"
    )
    assert shown(said, _actor("nobody")) == redacted(said)


def test_tail_cuts_at_a_lines_start_so_no_kept_line_loses_its_mark() -> None:
    text = f"one\n{MARK}hunter2 two\n{MARK}three"
    assert tail(text, len(text)) == text
    for limit in range(len(text)):
        kept = tail(text, limit)
        assert len(kept) <= limit and text.endswith(kept)
        assert kept == "" or text[len(text) - len(kept) - 1] == "\n"
        assert "hunter2" not in redacted(kept)
    assert tail(text, len(f"{MARK}three")) == f"{MARK}three"
    assert tail("x" * 10, 5) == ""
