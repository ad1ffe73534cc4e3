"""``moorage openapi``: print the OpenAPI document offline, for the UI's generated client."""

from __future__ import annotations

import json


def openapi() -> None:
    """Print the OpenAPI document of this version as JSON (no server, store or engine needed)."""
    from moorage.api.app import openapi_document

    print(json.dumps(openapi_document(), indent=2, sort_keys=True))
