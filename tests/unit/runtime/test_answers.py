"""``runtime.docker.answers.summary_of``: a container list entry read like an inspect."""

from __future__ import annotations

import pytest

from moorage.runtime.docker.answers import summary_of


@pytest.mark.parametrize(
    ("status", "health"),
    [
        ("Up 3 seconds (health: starting)", "starting"),
        ("Up 19 seconds (healthy)", "healthy"),  # "healthy" once read as starting (issue 16)
        ("Up 2 minutes (unhealthy)", "unhealthy"),
        ("Up 5 seconds", None),
    ],
)
def test_the_health_in_a_status_line(status: str, health: str | None) -> None:
    entry = {"Id": "c1", "Names": ["/web"], "State": "running", "Status": status}
    assert summary_of(entry).health == health


def test_an_exit_code_in_a_status_line() -> None:
    entry = {"Id": "c1", "Names": ["/job"], "State": "exited", "Status": "Exited (3) 1 second ago"}
    assert summary_of(entry).exit_code == 3
