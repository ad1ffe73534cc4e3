"""Object keys on a storage target: what one may look like.

A key is a relative, ``/``-separated path of plain segments (letters, digits, ``.``,
``_``, ``-``; no segment of only dots), at most 512 characters: the same on a POSIX
file system (``local``, ``sftp``) and in S3, with nothing a shell, a URL or a path
join would read differently. Keys are made by Moorage (``snapshots/<workload>/<snapshot>
.tar.zst.age``), so a refusal here is a bug or a hostile catalog entry, never a user's
typo.
"""

from __future__ import annotations

import re

from moorage.errors import InvalidInput

MAX_KEY = 512
_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,128}")


def check_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` when it is a valid object key (or, with ``prefix``, a valid start
    of one: empty, or ending in ``/``); raise ``InvalidInput`` (``invalid_key``)."""
    if prefix and key == "":
        return key
    body = key[:-1] if prefix and key.endswith("/") else key
    segments = body.split("/")
    if (
        len(key) > MAX_KEY
        or not all(_SEGMENT.fullmatch(s) for s in segments)
        or any(set(s) == {"."} for s in segments)
    ):
        raise InvalidInput(
            f"invalid object key {key!r}: use /-separated names of letters, digits, "
            "'.', '_' and '-' (no '..', no leading '/')",
            code="invalid_key",
        )
    return key
