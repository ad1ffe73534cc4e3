"""Every error code the API can answer has a message in each of the UI's languages."""

from __future__ import annotations

import json
import re

from moorage.api.errors import _HTTP_CODES
from tests.conftest import REPO

I18N = REPO / "web" / "src" / "lib" / "i18n"
CODE = re.compile(r"""\bcode\s*=\s*["']([a-z_]+)["']""")


def api_error_codes() -> set[str]:
    codes = set(_HTTP_CODES.values())
    for path in (REPO / "moorage").rglob("*.py"):
        if "cli" not in path.relative_to(REPO / "moorage").parts:  # the CLI's own, never HTTP
            codes.update(CODE.findall(path.read_text()))
    codes.discard("error")  # the abstract base class; every raise names a subclass
    return codes


def test_the_scan_finds_codes() -> None:
    codes = api_error_codes()
    assert {"restore_running", "bad_credentials", "invalid_archive", "not_found"} <= codes


def test_every_api_error_code_is_translated() -> None:
    codes = api_error_codes()
    for lang in ("en", "ru"):
        messages = json.loads((I18N / f"{lang}.json").read_text())["errors"]
        missing = sorted(codes - set(messages))
        assert missing == [], f"{lang}.json lacks errors.* for {missing}"
