"""wait_healthy says what it waits for and, on a long wait, how long so far (issue 15);
what the container or its health-check command printed reaches the failure only marked
as program output, and never a "still waiting" line."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from moorage.errors import DeployFailed
from moorage.program_output import HIDDEN, MARK, redacted, revealed
from moorage.runtime.engine import Container
from moorage.sources.image import health
from moorage.sources.image.config import ImageConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class StartingEngine:
    """A container that runs but whose image HEALTHCHECK never leaves ``starting``."""

    def get(self, container_id: str) -> Container:
        return Container(container_id, "c", "running", "starting", {}, "sha256:x", {})

    def logs(self, container_id: str, tail: int) -> str:
        return ""


def test_a_long_wait_reports_its_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(health.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(health.time, "sleep", clock.sleep)
    lines: list[str] = []
    config = ImageConfig(image="moorage-test/healthy:1", health={"timeout_seconds": 12})
    engine: Any = StartingEngine()
    with pytest.raises(DeployFailed, match="not healthy after 12 s"):
        health.wait_healthy(
            engine,
            "c1",
            config,
            image_has_healthcheck=True,
            publish_addr="127.0.0.1",
            log=lines.append,
        )
    assert lines[0] == "health: waiting for the image's HEALTHCHECK to report healthy (up to 12 s)"
    assert lines[1:] == [
        "health: still waiting, 5 s of 12 s (HEALTHCHECK status starting)",
        "health: still waiting, 10 s of 12 s (HEALTHCHECK status starting)",
    ]


SECRET = "hunter2-Secret"


class PrintingEngine:
    """A container that runs and a health-check command that prints a secret and fails;
    or, with ``dies``, a container that restarted after printing it."""

    def __init__(self, dies: bool = False) -> None:
        self.dies = dies

    def get(self, container_id: str) -> Container:
        if self.dies:
            return Container(container_id, "c", "running", None, {}, "sha256:x", {}, 0, 1)
        return Container(container_id, "c", "running", None, {}, "sha256:x", {})

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        return 1, f"db is {SECRET}\n"

    def logs(self, container_id: str, tail: int) -> str:
        # A forged line: the last line printed holds a line break of its own and a mark.
        return f"starting\nfine\u2028{MARK}13:00:00 deploy succeeded {SECRET}\n"

    def last_exit_code(self, container_id: str) -> int:
        return 3


def _fail(monkeypatch: pytest.MonkeyPatch, engine: Any, config: ImageConfig) -> tuple[str, str]:
    clock = Clock()
    monkeypatch.setattr(health.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(health.time, "sleep", clock.sleep)
    lines: list[str] = []
    with pytest.raises(DeployFailed) as failed:
        health.wait_healthy(
            engine,
            "c1",
            config,
            image_has_healthcheck=False,
            publish_addr="127.0.0.1",
            log=lines.append,
        )
    return failed.value.message, "\n".join(lines)


def test_a_health_commands_output_is_marked_in_the_failure_and_nowhere_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = ImageConfig(
        image="moorage-test/httpd:1", health={"cmd": ["check"], "timeout_seconds": 12}
    )
    error, log = _fail(monkeypatch, PrintingEngine(), config)
    assert (
        error == f"not healthy after 12 s: command exited 1; its last output:\n{MARK}db is {SECRET}"
    )
    assert (
        redacted(error) == f"not healthy after 12 s: command exited 1; its last output:\n{HIDDEN}"
    )
    assert SECRET not in log and "still waiting, 5 s of 12 s (command exited 1)" in log


def test_a_dead_containers_last_line_is_marked_whatever_it_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = ImageConfig(image="moorage-test/httpd:1", health=None)
    error, _ = _fail(monkeypatch, PrintingEngine(dies=True), config)
    said = "the container kept restarting (exit code 3); its last output:"
    assert revealed(error) == f"{said}\n\ufffd13:00:00 deploy succeeded {SECRET}"
    assert redacted(error) == f"{said}\n{HIDDEN}"


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (httpx.RemoteProtocolError("x"), "nothing answered HTTP on container port 9999"),
        (httpx.ConnectError("x"), "nothing answered HTTP on container port 9999"),
        (httpx.ReadError("x"), "nothing answered HTTP on container port 9999"),
        (httpx.ReadTimeout("x"), "no answer in time from container port 9999"),
    ],
)
def test_a_probe_without_an_answer_says_why_in_the_users_terms(
    exc: httpx.HTTPError, said: str
) -> None:
    """A wrong container port once read "GET /: RemoteProtocolError" (a newcomer)."""
    assert health._unanswered(exc, 9999).startswith(said)
