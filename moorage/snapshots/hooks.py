"""Running a workload's capture hooks (SPEC section 10) with ``docker exec`` in its
running container: for a compose workload, the container of the service the hook names.

``before`` runs while the workload still runs, before it is quiesced; when it cannot
run, exits non-zero or outlasts ``timeout_s``, the capture fails with its output.
``after`` runs once the workload is resumed, whatever happened before it; its failure
is a warning of the snapshot. Every line a hook prints goes into the snapshot's log
(at most ``MAX_OUTPUT`` characters per hook, the tail kept).

Docker has no call to end an exec: a hook that times out is left to end by itself in
the container (it is reported, and the capture goes on or fails as above).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from moorage.errors import MoorageError
from moorage.runtime.engine import LABEL_WORKLOAD, Container, Engine
from moorage.services.snapshot_hooks import Hook
from moorage.sources.compose.deploy import SERVICE_LABEL

MAX_OUTPUT = 64 * 1024
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
    """Run ``hook`` and wait at most ``timeout_s``; log its command, output and end."""
    where = f" in service {hook.service}" if hook.service else ""
    log(f"{phase} hook{where}: {' '.join(hook.command)}")
    container = container_for(engine, workload_id, hook.service)
    if container is None:
        failure = f"{phase} hook: no running container{where} to run it in"
        log(failure)
        return Outcome(failure, "")
    answer: dict[str, tuple[int, str] | str] = {}

    def call() -> None:
        try:
            answer["done"] = engine.exec(container.id, list(hook.command))
        except MoorageError as exc:
            answer["error"] = exc.message

    worker = threading.Thread(target=call, name=f"hook-{phase}-{workload_id}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        failure = f"{phase} hook timed out after {timeout_s} s"
        log(failure)
        return Outcome(failure, "")
    if "error" in answer:
        failure = f"{phase} hook could not run: {answer['error']}"
        log(failure)
        return Outcome(failure, "")
    done = answer["done"]
    assert isinstance(done, tuple)
    code, output = done
    output = output[-MAX_OUTPUT:]
    for line in output.splitlines():
        log(f"  {line}")
    if code != 0:
        failure = f"{phase} hook exited {code}"
        tail = output.strip()[-ERROR_TAIL:]
        if tail:
            failure += f": {tail}"
        log(f"{phase} hook exited {code}")
        return Outcome(failure, output)
    log(f"{phase} hook exited 0")
    return Outcome(None, output)
