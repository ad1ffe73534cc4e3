"""Teardown: remove what a workload runs, under its lock, before its rows go.

The caller (the workload's delete) removes the rows afterwards; this only acts on
the engine, through the kind's ``SourceKind.teardown``. It writes no row.
"""

from __future__ import annotations

from moorage.deployer.views import WorkloadViews
from moorage.errors import Conflict
from moorage.plugins.registry import Registry
from moorage.runtime.engine import Engine
from moorage.services import deployment_runs
from moorage.services.locks import WorkloadLocks
from moorage.store.db import Database

TEARDOWN_WAIT_SECONDS = 120.0


def teardown(
    db: Database,
    registry: Registry,
    engine: Engine,
    views: WorkloadViews,
    locks: WorkloadLocks,
    workload_id: str,
    *,
    purge_volumes: bool = False,
) -> None:
    """Remove what the workload runs. Raises Conflict (409 ``workload_busy``) if it stays
    busy longer than ``TEARDOWN_WAIT_SECONDS``, NotFound for an unknown workload, and
    ``EngineUnavailable`` (nothing touched) when it ever deployed and no engine answers.
    A workload that never left the queue runs nothing, so no engine is needed.

    Docker volumes that hold its data (``SourceKind.data_volumes``: a Compose project's
    named volumes) are removed only with ``purge_volumes``; without it, their being there
    is Conflict (409 ``has_volumes``, naming them) and nothing is touched. Moorage
    volumes stay on disk either way."""
    with locks.hold(workload_id, timeout=TEARDOWN_WAIT_SECONDS):
        with db.session() as s:
            view = views.view(s, workload_id, removing=True)
            started = deployment_runs.ever_started(s, workload_id)
        if not started:
            return
        engine.ping()
        kind, ctx = registry.source(view.kind), views.context(view)
        held = [] if purge_volumes else kind.data_volumes(ctx)
        if held:
            raise Conflict(
                f"the workload's Docker volumes hold data: {', '.join(held)}; copy what you "
                "need out of them, then pass purge_volumes=true to delete them with it",
                code="has_volumes",
                details=[{"field": "purge_volumes", "volume": name} for name in held],
            )
        kind.teardown(ctx)
