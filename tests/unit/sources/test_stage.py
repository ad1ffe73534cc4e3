"""What every source kind names and labels alike."""

from __future__ import annotations

from moorage.sources.stage import network_name


def test_names_of_different_slots_never_collide() -> None:
    assert network_name("a-b", "c") != network_name("a", "b-c")
