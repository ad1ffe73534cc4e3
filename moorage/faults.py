"""Test-only crash injection (SPEC section 6): SIGKILL ourselves at a named point.

Honoured only when MOORAGE_ENABLE_FAULTPOINTS=1; a no-op otherwise. Never use
it for control flow.
"""

from __future__ import annotations

import os
import signal
import sys

from moorage.settings import Settings


class FaultPoints:
    def __init__(self, settings: Settings) -> None:
        self._armed = settings.faultpoint if settings.enable_faultpoints else None

    def __call__(self, name: str) -> None:
        if self._armed is not None and name == self._armed:
            print(f"faultpoint {name}: killing the process", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
