"""``snapshots.hooks.run``: a capture hook through the engine's exec, on an engine stub:
the container it picks, what it logs, and each way it fails (issue 16, SPEC section 10);
what the hook printed is marked as program output, which a viewer never reads."""

from __future__ import annotations

from typing import Any

from moorage.errors import EngineError
from moorage.program_output import HIDDEN, MARK, redacted, revealed
from moorage.runtime.engine import LABEL_WORKLOAD, Container, ExecTimedOut
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
        self.asked: tuple[float, int] | None = None

    def containers(self, labels: dict[str, str]) -> list[Container]:
        return [b for b in self.boxes if all(b.labels.get(k) == v for k, v in labels.items())]

    def exec(
        self, container_id: str, command: list[str], *, timeout_s: float, keep: int
    ) -> tuple[int, str]:
        self.ran.append((container_id, command))
        self.asked = (timeout_s, keep)
        if self.answer == "hang":  # what the engine does when the deadline passes
            raise ExecTimedOut("did not end", "dumping...\n")
        if isinstance(self.answer, Exception):
            raise self.answer
        code, output = self.answer
        return code, output[-keep:]  # the engine keeps the end


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
        "before hook in service db: started",
        f"  {MARK}dumped 3 tables",
        "before hook exited 0",
    ]


def test_each_way_a_hook_fails() -> None:
    failed, _ = _run(
        Stub([_box("c", None)], (3, "x" * (2 * MAX_OUTPUT) + "disk full")), Hook(("dump",))
    )
    assert failed.failure.startswith(f"before hook exited 3; its output:\n{MARK}xxx")
    assert failed.failure.endswith("disk full")
    assert redacted(failed.failure) == f"before hook exited 3; its output:\n{HIDDEN}"
    assert len(failed.output) == MAX_OUTPUT
    broken, _ = _run(Stub([_box("c", None)], EngineError("gone")), Hook(("dump",)))
    assert broken.failure == "before hook could not run: gone"
    nowhere, _ = _run(Stub([_box("c", "web")], (0, "")), Hook(("dump",), "db"))
    assert nowhere.failure == "before hook: no running container in service db to run it in"
    stopped, _ = _run(Stub([_box("c", None, "exited")], (0, "")), Hook(("dump",)))
    assert stopped.failure is not None and "no running container" in stopped.failure
    slow = Stub([_box("c", None)], "hang")
    late, lines = _run(slow, Hook(("sleep", "60")), timeout=1)
    assert late.failure == "before hook timed out after 1 s" and lines[-1] == late.failure
    # The engine got the timeout and the bound; what it read by then is in the log.
    assert slow.asked == (1, MAX_OUTPUT) and f"  {MARK}dumping..." in lines


def test_the_log_names_the_hook_but_never_its_command_line() -> None:
    """The snapshot's log is a viewer's; a hook's command may hold a secret."""
    secret = "PGPASSWORD=s3cret-Value"
    for answer in [(0, "ok\n"), (2, "bad\n"), "hang", EngineError("gone")]:
        stub = Stub([_box("c-db", "db")], answer)
        outcome, lines = _run(stub, Hook(("env", secret, "pg_dump"), "db"))
        assert lines[0] == "before hook in service db: started"
        assert not any("s3cret" in line or "pg_dump" in line for line in lines), lines
        assert "s3cret" not in (outcome.failure or "")


def test_what_a_hook_prints_is_marked_however_it_breaks_its_lines() -> None:
    """A hook cannot print a line of Moorage's: every line break it prints (``\\r``,
    U+2028, ...) starts another marked line, and a mark it prints is not one."""
    printed = f"a\rb\u2028c\r\n{MARK}d\x00\n\nbefore hook exited 0\n"
    outcome, lines = _run(Stub([_box("c", None)], (4, printed)), Hook(("dump",)))
    out = lines[1:-1]
    assert [revealed(line) for line in out] == [
        "  a",
        "  b",
        "  c",
        "  \ufffdd\ufffd",
        "  ",
        "  before hook exited 0",
    ]
    assert all(line.startswith(f"  {MARK}") and line.count(MARK) == 1 for line in out)
    log = "\n".join(lines)
    assert redacted(log) == f"before hook: started\n  {HIDDEN}\nbefore hook exited 4"
    assert outcome.failure is not None
    assert redacted(outcome.failure) == f"before hook exited 4; its output:\n{HIDDEN}"
