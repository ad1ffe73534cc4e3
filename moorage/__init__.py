"""Moorage: a self-hosted control plane for container workloads on one Docker host."""

import sys

__version__ = "0.1.0"

# httpx's ``__init__`` imports its command-line client (``httpx._main``), and with it
# click, rich and pygments whenever they are installed (typer brings them): about 4 MiB
# of every Moorage process, the server's included (SPEC section 8: idle RSS), for a
# client nobody runs from here. None in ``sys.modules`` makes that one import fail,
# which httpx catches (its fallback ``main`` says how to install ``httpx[cli]``).
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
