"""JSON Merge Patch (RFC 7386) for PATCHed configs, aware of masked secrets."""

from __future__ import annotations

from typing import Any

from moorage.plugins.kind_config import MASK

# A client echoing MASK back for a secret means "unchanged".


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif value == MASK and key in result:
            continue
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
