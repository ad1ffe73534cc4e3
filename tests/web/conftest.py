"""Helpers for the UI's toolchain tests (the `web_built` fixture is in tests/conftest.py)."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO

WEB = REPO / "web"


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", "--silent", *args], cwd=WEB, capture_output=True, text=True, timeout=timeout
    )
