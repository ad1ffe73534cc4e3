"""Hold a workload's containers still while its volumes are read, and always let them go.

``stop`` stops them (consistent), ``pause`` freezes them (crash-consistent), ``none``
leaves them running (live). Whatever happens inside the block, every container
comes back to the state it was in before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from moorage.errors import MoorageError
from moorage.runtime.engine import Container, Engine
from moorage.store.states import CaptureMode


@contextmanager
def quiesced(
    engine: Engine,
    containers: list[Container],
    mode: CaptureMode,
    *,
    stop_timeout: int,
    log: Callable[[str], None],
) -> Iterator[None]:
    held: list[Container] = []
    try:
        for c in containers:
            if not c.running or mode == CaptureMode.NONE:
                continue
            if mode == CaptureMode.STOP:
                engine.stop(c.id, stop_timeout)
                log(f"stopped {c.name} for the capture")
            else:
                engine.pause(c.id)
                log(f"paused {c.name} for the capture")
            held.append(c)
        yield
    finally:
        failures: list[MoorageError] = []
        for c in held:
            try:  # resume every container, even when one of them refuses
                if mode == CaptureMode.STOP:
                    engine.start(c.id)
                    log(f"started {c.name} again")
                else:
                    engine.unpause(c.id)
                    log(f"unpaused {c.name}")
            except MoorageError as exc:
                log(f"could not resume {c.name}: {exc.message}; reconcile will retry")
                failures.append(exc)
        if failures and sys.exc_info()[0] is None:
            raise failures[0]
