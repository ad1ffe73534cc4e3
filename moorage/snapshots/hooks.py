"""Running a workload's capture hooks (SPEC section 10) with ``docker exec`` in its
running container: for a compose workload, the container of the service the hook names.

``before`` runs while the workload still runs, before it is quiesced; when it cannot
run, exits non-zero or outlasts ``timeout_s``, the capture fails with its output.
``after`` runs once the workload is resumed, whatever happened before it; its failure
is a warning of the snapshot. The log names the hook (phase, service, exit code), not
its command line (see ``run``). Every line a hook prints goes into the snapshot's log
(at most its last ``MAX_OUTPUT`` bytes: the engine reads the output as it comes and
drops what is older, so a hook printing without end costs no memory), and the end of it
into the failure; both marked as program output (``moorage.program_output``), which a
viewer of the snapshot does not read.

Docker has no call to end an exec: at its timeout the hook's output stops being read and
the hook is left to end by itself in the container (it is reported, and the capture goes
on or fails as above); no thread of the server waits for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moorage import program_output
from moorage.errors import MoorageError
from moorage.runtime.engine import EXEC_KEEP, LABEL_WORKLOAD, Container, Engine, ExecTimedOut
from moorage.services.snapshot_hooks import Hook
from moorage.sources.compose.deploy import SERVICE_LABEL

MAX_OUTPUT = EXEC_KEEP  # bytes of a hook's output kept (its end), read as it comes
ERROR_TAIL = 2000


@dataclass(frozen=True)
class Outcome:
    """What one hook did: ``failure`` is None when it exited 0."""

    failure: str | None
    output: str


def container_for(engine: Engine, workload_id: str, service: str | None) -> Container | None:
    """The running container of the workload (of ``service``, for a stack) a hook runs in."""
    labels = {LABEL_WORKLOAD: workload_id}
    if service is not None:
        labels[SERVICE_LABEL] = service
    running = [c for c in engine.containers(labels) if c.running and c.state == "running"]
    return running[0] if running else None


def run(
    engine: Engine,
    workload_id: str,
    phase: str,
    hook: Hook,
    timeout_s: int,
    log: Callable[[str], None],
) -> Outcome:
    """Run ``hook`` and wait at most ``timeout_s``; log which hook runs, its output
    (marked: operators' to read) and its end. Never its command line: the log is a
    viewer's to read, and a hook's command may hold a secret (``PGPASSWORD=...``); the
    hooks themselves are operators' to read. A failure that exited non-zero carries the
    output's end, marked, on the lines after its first."""
    where = f" in service {hook.service}" if hook.service else ""
    log(f"{phase} hook{where}: started")
    container = container_for(engine, workload_id, hook.service)
    if container is None:
        failure = f"{phase} hook: no running container{where} to run it in"
        log(failure)
        return Outcome(failure, "")
    try:
        code, output = engine.exec(
            container.id, list(hook.command), timeout_s=timeout_s, keep=MAX_OUTPUT
        )
    except ExecTimedOut as exc:
        for line in program_output.lines(exc.output):
            log(f"  {line}")
        failure = f"{phase} hook timed out after {timeout_s} s"
        log(failure)
        return Outcome(failure, exc.output)
    except MoorageError as exc:
        failure = f"{phase} hook could not run: {exc.message}"
        log(failure)
        return Outcome(failure, "")
    for line in program_output.lines(output):
        log(f"  {line}")
    if code != 0:
        failure = f"{phase} hook exited {code}"
        tail = program_output.marked(output.strip()[-ERROR_TAIL:])
        if tail:
            failure += f"; its output:\n{tail}"
        log(f"{phase} hook exited {code}")
        return Outcome(failure, output)
    log(f"{phase} hook exited 0")
    return Outcome(None, output)
