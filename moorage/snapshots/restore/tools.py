"""What a restore works with, named one by one: the parts ``moorage/server.py`` hands
the restore run, its recovery and its packing (and nothing else of the server)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moorage.deployer.views import WorkloadViews
from moorage.plugins.registry import Registry
from moorage.runtime.engine import Engine
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings
from moorage.store.db import Database


@dataclass(frozen=True)
class RestoreTools:
    """The restore's collaborators. ``redeploy(workload_id, reason)`` is
    ``DeployQueue.redeploy`` (the last good artifact again; the caller holds the lock)."""

    settings: Settings
    db: Database
    registry: Registry
    engine: Engine
    views: WorkloadViews
    locks: WorkloadLocks
    fault: Callable[[str], None]
    redeploy: Callable[[str, str], str | None]
    fetch: Callable[[str, Path], None] | None = None
    """``Copier.fetch(snapshot_id, archive)``: a missing archive back from a verified
    off-site copy (SPEC section 11); raises when there is none or it is corrupt."""
