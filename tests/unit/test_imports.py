"""Every module of moorage imports on its own, in a fresh interpreter.

An import cycle only shows when the import starts at the right module (issue 13: the
image kind's health check imported its config, which imported the deploy side, which
imported the health check half-made), so each module gets an interpreter of its own.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from multiprocessing.pool import ThreadPool

import moorage

MODULES = sorted(m.name for m in pkgutil.walk_packages(moorage.__path__, "moorage."))
WORKERS = min(2, os.cpu_count() or 1)  # the test machine is shared: two interpreters at once


def _import(module: str) -> tuple[str, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return module, done.returncode, done.stderr


def test_the_walk_reaches_into_every_package() -> None:
    assert {
        "moorage.api.app",
        "moorage.deployer.service",
        "moorage.plugins.spec",
        "moorage.snapshots.restore.run",
        "moorage.sources.compose.deploy",
        "moorage.sources.image.health",
    } <= set(MODULES)


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    with ThreadPool(WORKERS) as pool:
        results = pool.map(_import, MODULES)
    failed = {
        module: stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {code}"
        for module, code, stderr in results
        if code != 0
    }
    assert failed == {}
