"""The archive format (SPEC section 5): constants, caps, names, and the manifest.

One place says what an archive may hold, so the writer and the untrusted reader
cannot drift apart: the entry types and what each counts as in the manifest, the
rule for a path component (raw bytes, anything but ``/`` and NUL, not ``.``/``..``),
the caps a reader enforces, and the manifest's JSON shape for formats 1 and 2.
This module does no I/O and must never accept a manifest a reader could not check
entry for entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from moorage.errors import ArchiveInvalid

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST_NAME = "manifest.json"
VOLUMES_DIR = "volumes"

DEFAULT_MAX_MEMBERS = 1_000_000
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_NAME_BYTES = 4096
DEFAULT_MAX_COMPONENT_BYTES = 255
DEFAULT_MAX_LINK_BYTES = 4095  # Linux PATH_MAX less the NUL: the longest symlink target
DEFAULT_MAX_MANIFEST_BYTES = 1_048_576
DEFAULT_MAX_WINDOW_LOG = 24  # 16 MiB: level 3 uses 2 MiB; a larger cap only buys memory
DEFAULT_MAX_XATTR_BYTES = 64 * 1024  # per entry, names and values together

# Permission bits with the sticky bit. setuid and setgid are dropped (host safety):
# a restored file must not hand an owner's rights to whoever runs it.
MODE_MASK = 0o1777
DROPPED_MODE_BITS = 0o6000

# The manifest's per-volume counters, in the order they are printed.
COUNTS_V1 = ("files", "bytes")
COUNTS_V2 = ("files", "dirs", "symlinks", "hardlinks", "fifos", "bytes", "allocated_bytes")

# Extended attributes an archive may carry: the user namespace and POSIX ACLs. Others
# (security.capability, trusted.*, security.selinux) are host policy, not volume data.
XATTR_PREFIX = "user."
ACL_XATTRS = ("system.posix_acl_access", "system.posix_acl_default")


def xattr_allowed(name: str) -> bool:
    """Whether an extended attribute is data an archive keeps (SPEC section 5)."""
    return name.startswith(XATTR_PREFIX) or name in ACL_XATTRS


def fail(message: str) -> NoReturn:
    """Refuse an archive: the one way the reader reports a broken rule."""
    raise ArchiveInvalid(message)


@dataclass(frozen=True)
class VolumeSource:
    """One volume directory to capture, stored as ``volumes/<index>/``."""

    index: int
    name: str
    scope: str
    source: str
    path: Path


@dataclass(frozen=True)
class Limits:
    """Caps the reader enforces; ``max_bytes`` is ``MOORAGE_SNAPSHOT_MAX_BYTES``."""

    max_bytes: int
    max_members: int = DEFAULT_MAX_MEMBERS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_name_bytes: int = DEFAULT_MAX_NAME_BYTES
    max_component_bytes: int = DEFAULT_MAX_COMPONENT_BYTES
    max_link_bytes: int = DEFAULT_MAX_LINK_BYTES
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    max_window_log: int = DEFAULT_MAX_WINDOW_LOG
    max_xattr_bytes: int = DEFAULT_MAX_XATTR_BYTES


@dataclass(frozen=True)
class WriteResult:
    """A finished archive: where, how big, its SHA-256, its manifest, and what it lacks.

    ``skipped`` lists every entry of the source trees that is NOT in the archive
    (``"<volume>: <path>: <why>"``: sockets, devices, names over a cap); an archive
    with nothing skipped holds every entry, so the source may be deleted once it is
    durable. ``warnings`` holds everything worth telling, ``skipped`` included.
    """

    path: Path
    size: int
    sha256: str
    manifest: dict[str, Any]
    warnings: list[str]
    skipped: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every entry of every source tree is in the archive."""
        return not self.skipped


def component_problem(component: bytes, max_component_bytes: int) -> str | None:
    """Why one path component cannot be stored or read, or None.

    A component is raw bytes (SPEC section 5): any byte but ``/`` and NUL, not
    empty, not ``.`` or ``..``, at most ``max_component_bytes`` long.
    """
    if component == b"":
        return "an empty path component"
    if component in (b".", b".."):
        return f"a {component.decode()!r} component"
    if b"\0" in component:
        return "a NUL byte"
    if b"/" in component:
        return "a slash inside a component"
    if len(component) > max_component_bytes:
        return f"a component longer than {max_component_bytes} bytes"
    return None


def shown(name: bytes, limit: int = 200) -> str:
    """A name as a person reads it in an error: escaped, never raw control bytes."""
    text = repr(name.decode("utf-8", "backslashreplace"))
    return text if len(text) <= limit else text[:limit] + "...'"


# ---------------------------------------------------------------------------
# The manifest


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTS_V2, 0)


def build_manifest(
    workload: dict[str, str], created_at: str, volumes: list[tuple[VolumeSource, dict[str, int]]]
) -> dict[str, Any]:
    """The format-2 manifest for ``volumes`` with their counted entries."""
    return {
        "format": FORMAT_VERSION,
        "workload": {key: workload[key] for key in ("id", "name", "kind")},
        "created_at": created_at,
        "volumes": [
            {
                "index": v.index,
                "name": v.name,
                "scope": v.scope,
                "source": v.source,
                **{key: counts[key] for key in COUNTS_V2},
            }
            for v, counts in volumes
        ],
    }


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    if len(data) > DEFAULT_MAX_MANIFEST_BYTES:
        raise ValueError("the manifest is larger than readers accept")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            fail(f"manifest.json repeats the key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    fail(f"manifest.json contains {name}, which is not JSON")


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def counted_keys(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The per-volume counters a manifest of this format declares."""
    return COUNTS_V1 if manifest["format"] == 1 else COUNTS_V2


def parse_manifest(data: bytes, limits: Limits) -> dict[str, Any]:
    """Parse and check an untrusted manifest; raises ``ArchiveInvalid``.

    Format 1 volumes carry ``files`` and ``bytes``; format 2 volumes carry every
    counter of ``COUNTS_V2``. Indexes must be exactly ``0..n-1`` in order, names
    distinct, and the declared totals within ``limits``.
    """
    try:
        manifest = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        fail("manifest.json is nested too deeply")
    except (ValueError, UnicodeError) as exc:
        fail(f"manifest.json is not valid JSON: {exc}")
    if not isinstance(manifest, dict):
        fail("manifest.json is not a JSON object")
    version = manifest.get("format")
    if type(version) is not int or version not in READABLE_FORMATS:
        fail(
            f"manifest.json has format {version!r}; only "
            f"{' and '.join(map(str, READABLE_FORMATS))} are understood"
        )
    workload = manifest.get("workload")
    if not isinstance(workload, dict) or not all(
        isinstance(workload.get(key), str) for key in ("id", "name", "kind")
    ):
        fail("manifest.json: workload must be an object with string id, name and kind")
    if not isinstance(manifest.get("created_at"), str):
        fail("manifest.json: created_at must be a string")
    volumes = manifest.get("volumes")
    if not isinstance(volumes, list):
        fail("manifest.json: volumes must be a list")
    keys = counted_keys(manifest)
    names: set[str] = set()
    for position, volume in enumerate(volumes):
        if not isinstance(volume, dict):
            fail(f"manifest.json: volume {position} is not an object")
        index = volume.get("index")
        if type(index) is not int or index != position:
            fail(
                f"manifest.json: the volume at position {position} has index {index!r}; "
                "indexes must be exactly 0..n-1 in order"
            )
        for key in ("name", "scope", "source"):
            if not isinstance(volume.get(key), str):
                fail(f"manifest.json: volume {position} {key} must be a string")
        for key in keys:
            if not _is_count(volume.get(key)):
                fail(f"manifest.json: volume {position} {key} must be a non-negative integer")
        if volume["name"] in names:
            fail(f"manifest.json: the volume name {volume['name']!r} appears twice")
        names.add(volume["name"])
    declared_bytes = sum(v["bytes"] for v in volumes)
    if declared_bytes > limits.max_bytes:
        fail(f"manifest.json declares {declared_bytes} bytes, over the cap of {limits.max_bytes}")
    entries = sum(v[k] for v in volumes for k in keys if k not in ("bytes", "allocated_bytes"))
    if entries > limits.max_members:
        fail(f"manifest.json declares {entries} entries, over the cap of {limits.max_members}")
    return manifest
