"""The ``local`` storage kind: a directory on this host (a mounted disk, a NAS mount).

An object is written to a hidden scratch name in its directory, flushed to disk, then
renamed over its key (``rename(2)`` is atomic on one file system) and the directory
flushed too: a crash part-way leaves the old object or none, never a partial one
(SPEC section 11). Scratch names that a crash left behind are not listed and are
removed by the next write of that key.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.errors import TargetError
from moorage.plugins.kind_config import validate_config
from moorage.plugins.spec import StoredObject
from moorage.storage.keys import check_key

CHUNK = 1 << 20
SCRATCH = ".moorage-partial-"


class LocalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="An absolute directory; made when missing.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value:
            raise ValueError("must be an absolute path")
        if os.path.normpath(value) != value:
            raise ValueError(f"write it as {os.path.normpath(value)!r} (no '..', '.', '//')")
        return value


class LocalStore:
    """``TargetStore`` over the directory ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # A directory below the root that is a link (planted by whoever can write there)
        # must not lead the write elsewhere.
        real_root = os.path.realpath(self.root)
        if os.path.commonpath([os.path.realpath(path.parent), real_root]) != real_root:
            raise TargetError(
                f"{path.parent} leads outside the target {self.root} (a symbolic link); "
                "remove the link",
                code="target_error",
            )
        return path

    def put(self, key: str, source: BinaryIO) -> int:
        final = self._path(key)
        scratch = final.with_name(f"{SCRATCH}{final.name}.{uuid.uuid4().hex}")
        written = 0
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(scratch, "xb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(scratch, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            scratch.unlink(missing_ok=True)
            raise TargetError(f"cannot write {final}: {exc.strerror or exc}") from exc
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        for stale in final.parent.glob(f"{SCRATCH}{final.name}.*"):
            stale.unlink(missing_ok=True)
        return written

    def get(self, key: str, sink: BinaryIO) -> int:
        path = self._path(key)
        try:
            with open(path, "rb") as src:
                return _copy(src, sink)
        except FileNotFoundError:
            raise TargetError(
                f"no object {key!r} in {self.root}", code="target_object_missing"
            ) from None
        except OSError as exc:
            raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise TargetError(f"cannot delete {key!r} in {self.root}: {exc.strerror}") from exc

    def list(self, prefix: str = "") -> list[StoredObject]:
        check_key(prefix, prefix=True)
        found = []
        for path in self.root.rglob("*"):
            if path.name.startswith(SCRATCH) or not path.is_file() or path.is_symlink():
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                st = path.stat()
                found.append(
                    StoredObject(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                )
        return sorted(found, key=lambda o: o.key)

    def close(self) -> None:
        return None


class LocalStorage:
    """Registered as ``local`` in the ``moorage.storage`` entry point group."""

    kind: ClassVar[str] = "local"
    config_model: ClassVar[type[BaseModel]] = LocalConfig
    description: ClassVar[str] = "A directory on this host, such as a mounted backup disk."
    place_fields: ClassVar[frozenset[str]] = frozenset({"path"})

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, LocalConfig, config)

    def open(self, config: dict[str, Any]) -> LocalStore:
        root = Path(LocalConfig.model_validate(config).path)
        if os.path.realpath(root) != str(root) and root.exists():
            raise TargetError(
                f"{root} is or passes through a symbolic link: give the real path "
                f"({os.path.realpath(root)})",
                code="target_unreachable",
            )
        if root.exists() and not root.is_dir():
            raise TargetError(f"{root} is not a directory", code="target_unreachable")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetError(
                f"cannot use {root} as a storage target: {exc.strerror or exc}; check that "
                "the disk is mounted and Moorage may write there",
                code="target_unreachable",
            ) from exc
        if not os.access(root, os.W_OK | os.X_OK):
            raise TargetError(
                f"Moorage may not write to {root}; give its user write access there",
                code="target_auth_failed",
            )
        return LocalStore(root)


def _copy(src: BinaryIO, sink: BinaryIO) -> int:
    copied = 0
    while chunk := src.read(CHUNK):
        sink.write(chunk)
        copied += len(chunk)
    return copied


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
