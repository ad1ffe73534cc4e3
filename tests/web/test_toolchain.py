"""The UI's own checks run in the suite: Vitest, svelte-check, and a generated client that is
never stale."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import MOORAGE
from tests.web.conftest import WEB, npm

pytestmark = pytest.mark.usefixtures("web_built")


def test_vitest_unit_tests_pass() -> None:
    out = npm("run", "test")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "passed" in out.stdout


def test_svelte_check_finds_no_error_or_warning() -> None:
    out = npm("run", "check")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_openapi_document_of_the_client_is_current() -> None:
    current = json.loads(
        subprocess.run([MOORAGE, "openapi"], check=True, capture_output=True, text=True).stdout
    )
    committed = json.loads((WEB / "src/lib/api/openapi.json").read_text())
    assert committed == current, (
        "web/src/lib/api/openapi.json is stale: run `make api-client` and commit the result"
    )


def test_generated_types_match_the_committed_document(tmp_path: object) -> None:
    out = subprocess.run(
        ["npx", "openapi-typescript", "src/lib/api/openapi.json"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    committed = (WEB / "src/lib/api/schema.d.ts").read_text()
    assert out.stdout.strip() == committed.strip(), (
        "web/src/lib/api/schema.d.ts is stale: run `make api-client` and commit the result"
    )
