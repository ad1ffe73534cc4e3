"""The rendered workload list (services/listing.py): per filter, rebuilt once per change
of the store, and never older than what was committed before the caller asked."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row

from moorage.services.listing import Filter, WorkloadListing
from tests.fakes.world import STAGE, World


def render(rows: list[Row[Any]]) -> bytes:
    return json.dumps([[r.id, r.project, r.stage, r.last_status] for r in rows]).encode()


def ids(body: bytes) -> list[str]:
    return [item[0] for item in json.loads(body)]


def test_a_listing_after_a_commit_holds_it_and_an_unchanged_store_costs_no_rebuild(
    world: World,
) -> None:
    listing = WorkloadListing(world.db)
    first = world.workload("a")
    body = listing.get(Filter(), render)
    assert ids(body) == [first]
    assert listing.fresh(Filter()) == body
    assert listing.get(Filter(), render) == body
    assert listing.cache.rebuilds == 1

    second = world.workload("b")  # a commit: what was rendered before it is stale
    assert listing.fresh(Filter()) is None
    assert ids(listing.get(Filter(), render)) == [first, second]
    assert listing.cache.rebuilds == 2


def test_a_deploy_shows_in_the_next_listing(world: World) -> None:
    wid = world.workload()
    listing = WorkloadListing(world.db)
    assert json.loads(listing.get(Filter(), render))[0][3] is None
    done = world.deploy(wid)
    assert listing.fresh(Filter()) is None
    assert json.loads(listing.get(Filter(), render))[0][3] == done.status


def test_each_filter_has_its_own_rendering(world: World) -> None:
    wid = world.workload("a")
    listing = WorkloadListing(world.db)
    assert ids(listing.get(Filter(stage=STAGE), render)) == [wid]
    assert ids(listing.get(Filter(stage="staging"), render)) == []
    assert ids(listing.get(Filter(kind="compose"), render)) == []
    assert ids(listing.get(Filter(project="nope"), render)) == []
    assert listing.fresh(Filter(stage=STAGE)) is not None
    assert listing.cache.rebuilds == 4
