"""wait_healthy says what it waits for and, on a long wait, how long so far (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest

from moorage.errors import DeployFailed
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
