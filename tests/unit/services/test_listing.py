"""The rendered workload list (services/listing.py): per filter, rebuilt once per change
of the store, and never older than what was committed before the caller asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Row

from moorage.security.roles import SYSTEM
from moorage.server import load_registry
from moorage.services import projects, workloads
from moorage.services.listing import Filter, WorkloadListing
from moorage.settings import Settings
from moorage.store.db import Database
from tests.fakes.world import STAGE, World
from tests.unit.store import test_store

db, pg_url = test_store.db, test_store.pg_url


def render(row: Row[Any]) -> bytes:
    return json.dumps([row.id, row.project, row.stage, row.last_status]).encode()


def items(body: bytes) -> list[list[Any]]:
    return list(json.loads(body)["items"])


def ids(body: bytes) -> list[str]:
    return [item[0] for item in items(body)]


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
    assert items(listing.get(Filter(), render))[0][3] is None
    done = world.deploy(wid)
    assert listing.fresh(Filter()) is None
    assert items(listing.get(Filter(), render))[0][3] == done.status


def test_each_filter_has_its_own_rendering(world: World) -> None:
    wid = world.workload("a")
    listing = WorkloadListing(world.db)
    assert ids(listing.get(Filter(stage=STAGE), render)) == [wid]
    assert ids(listing.get(Filter(stage="staging"), render)) == []
    assert ids(listing.get(Filter(kind="compose"), render)) == []
    assert ids(listing.get(Filter(project="nope"), render)) == []
    assert listing.fresh(Filter(stage=STAGE)) is not None
    assert listing.cache.rebuilds == 4


def test_a_rebuild_renders_only_the_rows_whose_values_changed(world: World) -> None:
    a, b, c = world.workload("a"), world.workload("b"), world.workload("c")
    listing = WorkloadListing(world.db)
    assert ids(listing.get(Filter(), render)) == [a, b, c]
    assert listing.rows.rendered == 3
    world.deploy(b)  # b's status and latest deployment change; a and c do not
    assert [i[3] for i in items(listing.get(Filter(), render))][::2] == [None, None]
    assert listing.cache.rebuilds == 2
    assert listing.rows.rendered == 4
    # Another filter over the same rows renders nothing new.
    assert ids(listing.get(Filter(stage=STAGE), render)) == [a, b, c]
    assert listing.rows.rendered == 4


def test_the_api_list_is_byte_for_byte_what_its_model_writes(world: World) -> None:
    """Items joined by the listing are the bytes ``WorkloadList`` would write whole."""
    from moorage.api.routes.workloads import workload_out
    from moorage.api.schemas import WorkloadList

    for name in ("z-last", "a-first", "m-mid"):
        world.workload(name)
    world.deploy(world.workload("deployed"))
    listing = WorkloadListing(world.db)

    def row_json(row: Row[Any]) -> bytes:
        return workload_out(world.deployer.registry, row).model_dump_json().encode()

    body = listing.get(Filter(), row_json)
    with world.db.session() as s:
        rows = workloads.list_filtered(s)
    whole = WorkloadList(items=[workload_out(world.deployer.registry, r) for r in rows])
    assert body == whole.model_dump_json().encode()
    assert [i["name"] for i in json.loads(body)["items"]] == sorted(r.name for r in rows)


def test_the_listed_rows_are_the_orm_query_s_on_both_databases(db: Database) -> None:
    """``list_filtered`` (one driver step on SQLite, sorted in Python) gives the rows the
    plain ORM query gives, the same values and types, ordered by code point (a
    PostgreSQL collation may order ``b-1`` and ``b0`` the other way)."""
    registry = load_registry()
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop")
        projects.create(s, SYSTEM, slug="blog")
        for project, name in [("shop", "web"), ("shop", "api"), ("blog", "b-1"), ("blog", "b0")]:
            workloads.create(
                s,
                SYSTEM,
                registry,
                Settings(data_dir=Path("/nonexistent/moorage")),
                name=name,
                kind="image",
                project=project,
                stage="production",
                config={"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]},
            )
    with db.session() as s:
        listed = workloads.list_filtered(s)
        orm = [tuple(r) for r in s.execute(workloads.list_query())]
        one = workloads.list_filtered(s, project="blog")
    assert sorted(map(tuple, listed), key=str) == sorted(orm, key=str) and len(orm) == 4
    assert [(r.project, r.name) for r in listed] == [
        ("blog", "b-1"),
        ("blog", "b0"),
        ("shop", "api"),
        ("shop", "web"),
    ]
    assert [r.name for r in one] == ["b-1", "b0"]
