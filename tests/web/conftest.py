"""The UI's toolchain: node dependencies installed and the build fresh, once per session."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO

WEB = REPO / "web"


@pytest.fixture(scope="session")
def web_built() -> None:
    """Run scripts/web.sh: installs the locked node packages and rebuilds a stale build."""
    subprocess.run([str(REPO / "scripts" / "web.sh")], check=True, timeout=600)


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", "--silent", *args], cwd=WEB, capture_output=True, text=True, timeout=timeout
    )
