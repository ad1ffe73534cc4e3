"""How copies sit on a storage target: one data object and one metadata object each.

    snapshots/<workload id>/<created, YYYYmmddTHHMMSSZ>-<snapshot id>.tar.zst.age
    snapshots/<workload id>/<created, YYYYmmddTHHMMSSZ>-<snapshot id>.meta.age

The data object is the snapshot archive encrypted to the target's recipient (age). The
metadata object (the workload, the snapshot's size, SHA-256, manifest and times, also
age-encrypted: names of apps are nobody else's business) is written **last**, only after
the data object was read back and its SHA-256 matched: a copy counts as held by the
target (catalog, restore, retention) only when its metadata is there, so an upload cut
off at any point never leaves something that later counts as verified. The capture
time in the key lets retention decide from a listing alone.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moorage.errors import TargetError
from moorage.plugins.spec import StoredObject, TargetStore
from moorage.storage.encryption import decrypt_stream, encrypt_stream
from moorage.storage.keys import check_key

PREFIX = "snapshots/"
DATA = ".tar.zst.age"
META = ".meta.age"
STAMP = "%Y%m%dT%H%M%SZ"
MAX_META = 4 * 1024 * 1024
"""A metadata object is a few KiB (the manifest); a larger one is not Moorage's."""
_NAME = re.compile(
    r"snapshots/(?P<wl>[a-z]{2}_[0-9a-f]{16})/(?P<stamp>\d{8}T\d{6}Z)-(?P<sn>[a-z]{2}_[0-9a-f]{16})"
    r"(?P<ext>\.tar\.zst\.age|\.meta\.age)"
)


def data_key(workload_id: str, snapshot_id: str, created_at: datetime) -> str:
    """The data object's key of a snapshot's copy."""
    stamp = created_at.astimezone(UTC).strftime(STAMP)
    return check_key(f"{PREFIX}{workload_id}/{stamp}-{snapshot_id}{DATA}")


BUNDLE = ".tar.age"
"""An instance backup's data object (``offsite/instance.py``): a tar, age-encrypted."""


def meta_key(key: str) -> str:
    """The metadata object beside the data object ``key`` (a copy's or a bundle's)."""
    suffix = DATA if key.endswith(DATA) else BUNDLE
    return key[: -len(suffix)] + META


@dataclass(frozen=True)
class Held:
    """A copy a listing shows complete: data and metadata both there."""

    key: str
    workload_id: str
    snapshot_id: str
    created_at: datetime
    size: int
    """Ciphertext bytes of the data object."""


def held(objects: list[StoredObject], workload_id: str | None = None) -> list[Held]:
    """The complete copies among ``objects`` (a target's listing), oldest first. A data
    object without its metadata (an upload cut off, or not verified) is not one."""
    data: dict[str, StoredObject] = {}
    metas: set[str] = set()
    for obj in objects:
        m = _NAME.fullmatch(obj.key)
        if m is None or (workload_id is not None and m["wl"] != workload_id):
            continue
        if m["ext"] == DATA:
            data[obj.key] = obj
        else:
            metas.add(obj.key)
    out = []
    for key, obj in data.items():
        if meta_key(key) not in metas:
            continue
        m = _NAME.fullmatch(key)
        assert m is not None
        created = datetime.strptime(m["stamp"], STAMP).replace(tzinfo=UTC)
        out.append(Held(key, m["wl"], m["sn"], created, obj.size))
    return sorted(out, key=lambda h: (h.created_at, h.snapshot_id))


def parse(key: str) -> tuple[str, str] | None:
    """``(workload id, snapshot id)`` of a data object's key, or None."""
    m = _NAME.fullmatch(key)
    if m is None or m["ext"] != DATA:
        return None
    return m["wl"], m["sn"]


def write_meta(store: TargetStore, key: str, meta: dict[str, Any], recipient: str) -> None:
    """Encrypt ``meta`` (JSON) and put it beside the data object ``key``."""
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(json.dumps(meta, sort_keys=True).encode()), sealed, recipient)
    sealed.seek(0)
    store.put(meta_key(key), sealed)


class _Capped(io.BytesIO):
    def write(self, data: Any) -> int:
        if self.tell() + len(data) > MAX_META:
            raise TargetError(
                f"a copy's metadata object is larger than {MAX_META} bytes: not Moorage's",
                code="copy_corrupt",
            )
        return super().write(data)


def read_meta(store: TargetStore, key: str, identity: str) -> dict[str, Any]:
    """The metadata beside the data object ``key``, decrypted and parsed. ``TargetError``
    (``copy_corrupt``) when it does not decrypt or is not a JSON object;
    ``target_object_missing`` when there is none."""
    sealed = _Capped()
    store.get(meta_key(key), sealed)
    sealed.seek(0)
    plain = io.BytesIO()
    decrypt_stream(sealed, plain, identity)
    try:
        meta = json.loads(plain.getvalue())
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise TargetError(f"the metadata of {key} is not Moorage's", code="copy_corrupt")
    return meta
