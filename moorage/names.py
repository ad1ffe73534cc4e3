"""Name rules shared by every object: slugs for projects, stages, workloads, triggers."""

from __future__ import annotations

import re
import secrets

from moorage.errors import InvalidInput

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SLUG_RE = re.compile(SLUG_PATTERN)


def is_slug(value: object) -> bool:
    return isinstance(value, str) and SLUG_RE.fullmatch(value) is not None


def check_slug(what: str, value: str) -> None:
    """Raise ``InvalidInput`` (``invalid_slug``) naming ``what`` (``"workload name"``) when
    ``value`` is not a slug: 1-63 lower-case letters, digits or '-', not starting with '-'."""
    if not is_slug(value):
        raise InvalidInput(
            f"{what} {value!r} must be 1-63 lower-case letters, digits or '-', "
            "starting with a letter or digit",
            code="invalid_slug",
        )


def new_id(prefix: str) -> str:
    """A short random id such as ``wl_3f9a0c1d2b7e4a66``."""
    return f"{prefix}_{secrets.token_hex(8)}"
