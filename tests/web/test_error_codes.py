"""Every error code the API can answer has a message in each of the UI's languages.

The codes are ``errors.CODES``, the registry every raise is held to
(``tests/unit/test_error_codes.py``)."""

from __future__ import annotations

import json

from moorage.errors import CODES
from tests.conftest import REPO

I18N = REPO / "web" / "src" / "lib" / "i18n"

# Answers the UI never receives: nothing of Moorage's is served without a build, webhook
# answers go to the sender of the webhook, and ``error`` is the abstract base class.
NOT_FOR_THE_UI = {"ui_not_built", "bad_signature", "rate_limited", "error"}


def api_error_codes() -> set[str]:
    return set(CODES) - NOT_FOR_THE_UI


def test_the_registry_has_the_codes() -> None:
    codes = api_error_codes()
    assert {"restore_running", "bad_credentials", "invalid_archive", "not_found"} <= codes
    assert NOT_FOR_THE_UI <= set(CODES)


def test_every_api_error_code_is_translated() -> None:
    codes = api_error_codes()
    for lang in ("en", "ru"):
        messages = json.loads((I18N / f"{lang}.json").read_text())["errors"]
        missing = sorted(codes - set(messages))
        assert missing == [], f"{lang}.json lacks errors.* for {missing}"
