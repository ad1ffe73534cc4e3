"""``proxy.listeners.migrate_requests`` on each state of the sysctl file: on already,
off (turned on), missing (an old kernel), not writable; it never raises."""

from __future__ import annotations

from pathlib import Path

from moorage.proxy.listeners import migrate_requests


def test_off_is_turned_on(tmp_path: Path) -> None:
    knob = tmp_path / "tcp_migrate_req"
    knob.write_text("0\n")
    assert migrate_requests(knob) is None
    assert knob.read_text().strip() == "1"


def test_on_is_left_alone(tmp_path: Path) -> None:
    knob = tmp_path / "tcp_migrate_req"
    knob.write_text("1\n")
    knob.chmod(0o444)
    assert migrate_requests(knob) is None


def test_a_kernel_without_it_gets_a_reason(tmp_path: Path) -> None:
    reason = migrate_requests(tmp_path / "missing")
    assert reason is not None and "5.14" in reason


def test_a_knob_that_cannot_be_written_gets_a_reason(tmp_path: Path) -> None:
    knob = tmp_path / "tcp_migrate_req"
    knob.mkdir()  # reads and writes fail as an unwritable /proc file does, even as root
    reason = migrate_requests(knob)
    assert reason is not None and "could not set" in reason
