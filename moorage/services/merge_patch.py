"""JSON Merge Patch (RFC 7386) for PATCHed configs, aware of masked secrets."""

from __future__ import annotations

from typing import Any

from moorage.errors import InvalidInput
from moorage.plugins.kind_config import MASK


def merge_patch(target: Any, patch: Any, where: str = "") -> Any:
    """``target`` with ``patch`` merged in (RFC 7386: ``null`` removes a key). A client
    echoing ``MASK`` back for a stored secret means "unchanged"; ``MASK`` where nothing is
    stored is refused (``InvalidInput`` ``invalid_config``), since storing it would make
    the mask text itself a secret anyone can guess."""
    if not isinstance(patch, dict):
        if patch == MASK:
            raise InvalidInput(
                f"{where or 'the value'} is the mask {MASK!r} but nothing is stored there: "
                "send the value itself",
                code="invalid_config",
            )
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif value == MASK and key in result:
            continue
        else:
            result[key] = merge_patch(result.get(key), value, f"{where}.{key}" if where else key)
    return result
