"""An uploaded archive on its way to becoming a ``ready`` snapshot (``POST .../import``).

The caller streams the request body into ``IncomingArchive.write`` (capped at
``snapshot_max_bytes`` and hashed on the way into ``<id>.tar.zst.partial``), then calls
``keep``: fsync, the one untrusted reader over every byte (``read_archive``), the
rename into place, and the row with its audit row (``services.snapshots.record_import``)
as one guarded change of the workload. Used as a context manager: whatever fails, and
whenever (a cap, an empty body, a bad archive, a deleted workload, a busy lock, a
dropped connection), the partial file and the renamed archive are removed and no row
is written. Nothing here decides or writes rows itself.
"""

from __future__ import annotations

import hashlib
import os
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, PayloadTooLarge
from moorage.names import new_id
from moorage.security.roles import Actor
from moorage.services import guard
from moorage.services import snapshots as snapshot_service
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.snapshots.archive import Limits, read_archive


class IncomingArchive:
    """One upload into ``workload_id``'s snapshots, under a new snapshot id."""

    def __init__(self, settings: Settings, workload_id: str) -> None:
        self.workload_id = workload_id
        self.snapshot_id = new_id("sn")
        self.cap = settings.snapshot_max_bytes
        self.dest = snapshot_service.archive_path_for(settings, workload_id, self.snapshot_id)
        self.partial = self.dest.with_name(self.dest.name + ".partial")
        self.size = 0
        self._digest = hashlib.sha256()
        self._kept = False
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.partial, "wb")  # closed by keep or discard

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.discard()

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; ``PayloadTooLarge`` once the upload passes the cap."""
        self.size += len(chunk)
        if self.size > self.cap:
            raise PayloadTooLarge(f"the archive is larger than {self.cap} bytes")
        self._digest.update(chunk)
        self._out.write(chunk)

    def keep(self, session: Session, locks: WorkloadLocks, actor: Actor) -> str:
        """Make the upload durable, verify it, put it in place and record it; the id of
        the ready snapshot. Raises ``InvalidInput`` ``invalid_archive`` for an empty body,
        ``ArchiveInvalid`` (422) for any rule the archive breaks, ``NotFound`` when the
        workload was deleted meanwhile, ``Conflict`` ``workload_busy``; then nothing is
        kept. Blocks: call it from a worker thread."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        if self.size == 0:
            raise InvalidInput("the request carried no archive", code="invalid_archive")
        with open(self.partial, "rb") as src:
            manifest = read_archive(src, limits=Limits(max_bytes=self.cap))
        os.replace(self.partial, self.dest)
        with guard.change(session, locks, actor, AuditAction.SNAPSHOT_IMPORT, self.workload_id):
            snapshot_service.record_import(
                session,
                actor,
                self.workload_id,
                self.snapshot_id,
                manifest=manifest,
                size=self.size,
                sha256=self._digest.hexdigest(),
            )
        self._kept = True
        return self.snapshot_id

    def discard(self) -> None:
        """Remove what an upload that was not kept left on disk (idempotent)."""
        self._out.close()
        self.partial.unlink(missing_ok=True)
        if not self._kept:
            self.dest.unlink(missing_ok=True)
