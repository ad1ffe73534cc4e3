"""``snapshots.hooks.run``: a capture hook through the engine's exec, on an engine stub:
the container it picks, what it logs, and each way it fails (issue 16, SPEC section 10)."""

from __future__ import annotations

import threading
from typing import Any

from moorage.errors import EngineError
from moorage.runtime.engine import LABEL_WORKLOAD, Container
from moorage.services.snapshot_hooks import Hook
from moorage.snapshots.hooks import MAX_OUTPUT, run
from moorage.sources.compose.deploy import SERVICE_LABEL


def _box(cid: str, service: str | None, state: str = "running") -> Container:
    labels = {LABEL_WORKLOAD: "wl_1", **({SERVICE_LABEL: service} if service else {})}
    return Container(cid, cid, state, None, labels, "sha256:x", {})


class Stub:
    """The two engine calls a hook makes; ``answer`` decides what exec does."""

    def __init__(self, boxes: list[Container], answer: Any) -> None:
        self.boxes, self.answer = boxes, answer
        self.ran: list[tuple[str, list[str]]] = []
        self.release = threading.Event()

    def containers(self, labels: dict[str, str]) -> list[Container]:
        return [b for b in self.boxes if all(b.labels.get(k) == v for k, v in labels.items())]

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        self.ran.append((container_id, command))
        if self.answer == "hang":
            self.release.wait(30)
            return 0, ""
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer  # type: ignore[no-any-return]


def _run(stub: Stub, hook: Hook, timeout: int = 5) -> tuple[Any, list[str]]:
    lines: list[str] = []
    outcome = run(stub, "wl_1", "before", hook, timeout, lines.append)  # type: ignore[arg-type]
    return outcome, lines


def test_a_hook_runs_in_the_named_service_and_logs_its_output() -> None:
    stub = Stub(
        [_box("c-web", "web"), _box("c-db-old", "db", "exited"), _box("c-db", "db")],
        (0, "dumped 3 tables\n"),
    )
    outcome, lines = _run(stub, Hook(("pg_dump", "-f", "/data/x"), "db"))
    assert outcome.failure is None and stub.ran == [("c-db", ["pg_dump", "-f", "/data/x"])]
    assert lines == [
        "before hook in service db: pg_dump -f /data/x",
        "  dumped 3 tables",
        "before hook exited 0",
    ]


def test_each_way_a_hook_fails() -> None:
    failed, _ = _run(
        Stub([_box("c", None)], (3, "x" * (2 * MAX_OUTPUT) + "disk full")), Hook(("dump",))
    )
    assert failed.failure.startswith("before hook exited 3: ") and failed.failure.endswith(
        "disk full"
    )
    assert len(failed.output) == MAX_OUTPUT
    broken, _ = _run(Stub([_box("c", None)], EngineError("gone")), Hook(("dump",)))
    assert broken.failure == "before hook could not run: gone"
    nowhere, _ = _run(Stub([_box("c", "web")], (0, "")), Hook(("dump",), "db"))
    assert nowhere.failure == "before hook: no running container in service db to run it in"
    stopped, _ = _run(Stub([_box("c", None, "exited")], (0, "")), Hook(("dump",)))
    assert stopped.failure is not None and "no running container" in stopped.failure
    slow = Stub([_box("c", None)], "hang")
    try:
        late, lines = _run(slow, Hook(("sleep", "60")), timeout=1)
    finally:
        slow.release.set()
    assert late.failure == "before hook timed out after 1 s" and lines[-1] == late.failure
