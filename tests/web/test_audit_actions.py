"""Every audit action (``services.audit.AuditAction``) has a name in each of the UI's
languages, so the audit page never shows a bare ``workload.stop``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moorage.services.audit import AuditAction
from tests.conftest import REPO

I18N = REPO / "web" / "src" / "lib" / "i18n"


def lookup(messages: dict[str, Any], dotted: str) -> Any:
    node: Any = messages
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_audit_action_is_named(lang: str) -> None:
    actions = json.loads((I18N / f"{lang}.json").read_text())["audit"]["actions"]
    missing = [a.value for a in AuditAction if not isinstance(lookup(actions, a.value), str)]
    assert missing == [], f"{lang}.json lacks audit.actions.* for {missing}"
