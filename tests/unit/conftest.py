"""Unit-test fixtures: a Moorage over the in-memory engine (``tests.fakes``), or only its
store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.store.db import Database
from tests.fakes.world import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = make_world(tmp_path)
    yield made
    made.db.dispose()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite store of its own, without the rest of a world."""
    database = Database(f"sqlite:///{tmp_path / 'moorage.db'}")
    database.migrate()
    yield database
    database.dispose()
