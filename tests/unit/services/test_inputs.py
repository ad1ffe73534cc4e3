"""What a deploy runs, as a digest (services/inputs.py), on the real store: only what
reaches the containers counts, in a canonical form; ``refresh`` writes only a change."""

from __future__ import annotations

from typing import Any

import pytest

from moorage.plugins.registry import Registry
from moorage.services import inputs
from moorage.store.db import Database
from moorage.store.tables import EnvVar, Volume, Workload
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import make

db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop

MOUNT = {"name": "data", "scope": "stage", "source": "d", "target": "/d", "read_only": False}
RAN = {"config": {"image": "x:1"}, "env": {"A": "1", "B": "é"}, "volumes": [MOUNT]}


def test_an_empty_record_has_no_digest() -> None:
    assert inputs.digest({}) is None
    assert inputs.digest({"config": {}}) is not None


def test_the_digest_is_canonical() -> None:
    same = {
        "volumes": [{**MOUNT, "shared": True, "extra": 1}],
        "env": {"B": "é", "A": "1"},
        "config": {"image": "x:1"},
        "ignored": "not an input",
    }
    assert inputs.digest(same) == inputs.digest(RAN)
    assert len(inputs.digest(RAN) or "") == 64


@pytest.mark.parametrize(
    "changed",
    [
        {**RAN, "config": {"image": "x:2"}},
        {**RAN, "env": {"A": "1", "B": "e"}},
        {**RAN, "env": {"A": "1"}},
        {**RAN, "volumes": [{**MOUNT, "read_only": True}]},
        {**RAN, "volumes": [MOUNT, {**MOUNT, "name": "more"}]},
        {**RAN, "volumes": []},
    ],
)
def test_every_input_that_reaches_a_container_counts(changed: dict[str, Any]) -> None:
    assert inputs.digest(changed) != inputs.digest(RAN)


def test_volume_order_counts() -> None:
    other = {**MOUNT, "name": "logs", "target": "/l"}
    first = inputs.digest({**RAN, "volumes": [MOUNT, other]})
    assert first != inputs.digest({**RAN, "volumes": [other, MOUNT]})


@pytest.mark.parametrize(
    ("saved", "deployed", "pending"),
    [
        ("a", "a", False),
        ("a", "b", True),
        (None, "b", True),
        ("a", None, False),
        (None, None, False),
    ],
)
def test_pending(saved: str | None, deployed: str | None, pending: bool) -> None:
    assert inputs.pending(saved, deployed) is pending


def test_saved_reads_the_rows_in_the_deployment_shape(shop: Database, registry: Registry) -> None:
    workload_id = make(shop, registry, config={"image": "x:1"}).id
    with shop.session() as s:
        s.add(EnvVar(workload_id=workload_id, key="B", value="é", secret=True))
        s.add(EnvVar(workload_id=workload_id, key="A", value="1", secret=False))
        s.add(Volume(workload_id=workload_id, position=1, **{**MOUNT, "name": "z"}, shared=True))
        s.add(Volume(workload_id=workload_id, position=0, **MOUNT, shared=False))
    with shop.session() as s:
        read = inputs.saved(s, s.get_one(Workload, workload_id))
    assert read["env"] == {"A": "1", "B": "é"}
    assert read["volumes"] == [MOUNT, {**MOUNT, "name": "z"}]  # by position, no "shared"
    assert read["config"]["image"] == "x:1"


def test_refresh_keeps_the_saved_digest_current(shop: Database, registry: Registry) -> None:
    workload_id = make(shop, registry).id
    with shop.session() as s:
        workload = s.get_one(Workload, workload_id)
        inputs.refresh(s, workload)
        first = workload.saved_digest
        assert first == inputs.digest(inputs.saved(s, workload))
    with shop.session() as s:
        workload = s.get_one(Workload, workload_id)
        inputs.refresh(s, workload)
        assert workload.saved_digest == first
        assert not s.dirty  # unchanged: the row is not written
        s.add(EnvVar(workload_id=workload_id, key="A", value="1", secret=False))
        s.flush()
        inputs.refresh(s, workload)
        assert workload.saved_digest not in (None, first)
