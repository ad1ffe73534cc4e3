"""Where a volume lives on the host, and the containment rules that keep it there.

Capture and restore drive their scope handling off ``VOLUME_SCOPES``; both
re-derive host paths from the workload's current config through ``host_path``.
This module never creates, changes or removes anything on disk.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from moorage.errors import InvalidInput

VOLUME_SCOPES: tuple[str, ...] = ("stage", "project", "absolute")
SHARED_DIR = "_shared"
MAX_PATH_CHARS = 4096


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_volume")


def real_path(path: Path | str) -> Path:
    """``os.path.realpath(path)``; ``InvalidInput`` when a component is swapped while it
    is read (``realpath`` lstats a component, then reads its link: a link exchanged for a
    directory in between raises ``OSError``), so a racing path is refused as such, never
    an internal error (``runtime/pins.open_checked`` words the same race alike)."""
    try:
        return Path(os.path.realpath(path))
    except OSError as exc:
        raise _bad(
            f"volume path {path} changed while it was checked ({exc.strerror}); nothing was mounted"
        ) from None


def _check_chars(what: str, value: str) -> None:
    if not value:
        raise _bad(f"{what} must not be empty")
    if len(value) > MAX_PATH_CHARS:
        raise _bad(f"{what} is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in value:
        raise _bad(f"{what} must not contain a NUL byte")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _bad(f"{what} must not contain control characters")
    if "\\" in value:
        raise _bad(f"{what} must not contain backslashes")


def _parts(what: str, value: str) -> list[str]:
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(f"{what} must not contain '..'")
    return parts


def scope_base(data_dir: Path, project: str, stage: str, scope: str) -> Path:
    """The directory a relative ``source`` of this scope lives under."""
    if scope == "stage":
        return data_dir / "volumes" / project / stage
    if scope == "project":
        return data_dir / "volumes" / project / SHARED_DIR
    raise _bad(f"scope {scope!r} has no base directory")


def host_path(
    *,
    data_dir: Path,
    volume_roots: tuple[Path, ...],
    project: str,
    stage: str,
    scope: str,
    source: str,
) -> Path:
    """Return the host directory for a volume, or raise InvalidInput (never touches disk)."""
    if scope not in VOLUME_SCOPES:
        raise _bad(f"scope must be one of {', '.join(VOLUME_SCOPES)}, got {scope!r}")
    _check_chars("source", source)
    if scope == "absolute":
        if not source.startswith("/"):
            raise _bad("an absolute volume needs a source that starts with '/'")
        parts = _parts("source", source)
        if not volume_roots:
            raise _bad(
                "absolute volumes are disabled: set MOORAGE_VOLUME_ROOTS to the directories "
                "they may live under"
            )
        candidate = Path("/", *parts)
        real = real_path(candidate)
        for root in volume_roots:
            real_root = real_path(root)
            if real != real_root and real.is_relative_to(real_root):
                return candidate
        raise _bad(
            f"{source!r} is not below any of MOORAGE_VOLUME_ROOTS "
            f"({', '.join(str(r) for r in volume_roots)})"
        )
    if source.startswith("/"):
        raise _bad(f"a {scope} volume needs a relative source, not an absolute path")
    parts = _parts("source", source)
    if not parts:
        raise _bad("source must name a directory below the scope's base")
    base = scope_base(data_dir, project, stage, scope)
    candidate = base.joinpath(*parts)
    real_base = real_path(base)
    real = real_path(candidate)
    if real == real_base or not real.is_relative_to(real_base):
        raise _bad(f"source {source!r} resolves outside its {scope} directory")
    return candidate


def containment_base(
    *,
    data_dir: Path,
    volume_roots: tuple[Path, ...],
    project: str,
    stage: str,
    scope: str,
    path: Path,
) -> Path:
    """The directory a volume's host ``path`` must stay below: its scope's base, or for
    ``absolute`` the first of ``volume_roots`` that holds it (after resolving links).
    Raises InvalidInput when none does (never touches disk beyond ``realpath``)."""
    if scope != "absolute":
        return scope_base(data_dir, project, stage, scope)
    real = real_path(path)
    for root in volume_roots:
        real_root = real_path(root)
        if real != real_root and real.is_relative_to(real_root):
            return real_root
    raise _bad(f"{path} is not below any of MOORAGE_VOLUME_ROOTS")


def normalize_target(target: str) -> str:
    """Check a container mount point and return it in canonical form."""
    _check_chars("target", target)
    if not target.startswith("/"):
        raise _bad(f"target must be an absolute path inside the container, got {target!r}")
    parts = _parts("target", target)
    if not parts:
        raise _bad("target must not be the container's root directory")
    return str(PurePosixPath("/", *parts))
