"""``make bench``: run every benchmark, or the ones named on the command line."""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType

BENCHES = (
    "api_list",
    "deploy",
    "fanout",
    "list_under_load",
    "snapshot",
    "restore",
    "routing",
    "offsite",
)


def _stop(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM ends a benchmark like Ctrl-C does: its ``finally`` blocks stop the server
    it started and remove that server's containers (a killed run once left a server and
    56 restart-looping containers behind)."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(names: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    for name in names or list(BENCHES):
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
