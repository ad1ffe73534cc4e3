"""``make bench``: run every benchmark, or the ones named on the command line."""

from __future__ import annotations

import importlib
import sys

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


def main(names: list[str]) -> int:
    for name in names or list(BENCHES):
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
