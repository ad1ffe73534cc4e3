"""The workload list as sent, per filter, rebuilt once per change of the store.

``GET /api/workloads`` is the hottest read of the UI. ``WorkloadListing`` keeps its
answer per filter in a ``RenderCache`` (``store/renderings.py``): a current one is
served without a worker thread or a session; a stale one is rebuilt by one caller at a
time, which reads the rows (``workloads.list_filtered``) in a session of its own. Each
row becomes its JSON through the caller's ``render_row`` (the API's translation) once
per set of values (``RowRenderings``): a rebuild while deploys commit renders only the
rows they changed. A reader is never served a rendering older than what was committed
before it asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from moorage.services import workloads
from moorage.store.db import Database
from moorage.store.renderings import RenderCache, RowRenderings

RenderRow = Callable[[Row[Any]], bytes]
"""Turn one listed row (``workloads.list_filtered``) into its item's JSON; a function of
the row's values alone."""


@dataclass(frozen=True)
class Filter:
    """The list's query parameters; None matches every value."""

    project: str | None = None
    stage: str | None = None
    kind: str | None = None


class WorkloadListing:
    """The rendered workload list per ``Filter``, valid for one store generation."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.cache = RenderCache(db)
        self.rows = RowRenderings()

    def fresh(self, wanted: Filter) -> bytes | None:
        """The current rendering of ``wanted``, without waiting; None when it is stale."""
        return self.cache.fresh(wanted)

    def get(self, wanted: Filter, render_row: RenderRow) -> bytes:
        """``{"items": [...]}`` of ``wanted`` (SPEC section 4's list shape), at least as
        new as the store's generation now: built here (rows read in a session of its own,
        each rendered by ``render_row`` unless its values were rendered before) or by the
        caller already building it. Blocks: call it from a worker thread."""

        def build() -> bytes:
            with self.db.session() as session:
                fetched = workloads.fetch_listed(
                    session, project=wanted.project, stage=wanted.stage, kind=wanted.kind
                )
            # Keyed on the driver's values: a row seen before is neither decoded nor
            # rendered again.
            items = self.rows.each(
                fetched.raw, lambda raw: render_row(workloads.as_listed(fetched, raw))
            )
            return b'{"items":[' + b",".join(items) + b"]}"

        return self.cache.get(wanted, build)
