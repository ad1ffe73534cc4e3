"""Projects and their stages (services/projects.py) on the real store: slugs and stage
lists checked, a stage or project that still holds workloads is not removed, each
refusal writes nothing, each change one audit row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound
from moorage.plugins.registry import Registry
from moorage.services import projects
from moorage.store.db import Database
from moorage.store.tables import Project
from tests.unit.services.test_workloads import ADA, audit_rows, db, make, migrated, pg_url, registry

__all__ = ["db", "migrated", "pg_url", "registry"]  # fixtures of test_workloads


def create(db: Database, slug: str = "shop", **fields: Any) -> list[str]:
    with db.session() as s:
        return list(projects.create(s, ADA, slug=slug, **fields).stages)


def count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Project)) or 0)


def stages(db: Database, slug: str = "shop") -> list[str]:
    with db.session() as s:
        return list(projects.get(s, slug).stages)


def refused_create(
    db: Database, error: type[MoorageError], code: str, slug: str = "shop", **fields: Any
) -> None:
    before, audited = count(db), audit_rows(db)
    with pytest.raises(error) as caught:
        create(db, slug, **fields)
    assert caught.value.code == code
    assert count(db) == before
    assert audit_rows(db) == audited


def test_create_writes_the_default_stages_and_one_audit_row(db: Database) -> None:
    assert create(db, description="the shop") == ["development", "staging", "production"]
    with db.session() as s:
        row = projects.get(s, "shop")
        assert (row.slug, row.description) == ("shop", "the shop")
        assert row.id.startswith("pr_")
    assert audit_rows(db) == [
        (
            "ada",
            "project.create",
            "shop",
            {"via": "token", "stages": ["development", "staging", "production"]},
        )
    ]


def test_create_keeps_the_stage_order_given(db: Database) -> None:
    assert create(db, stages=["prod", "dev"]) == ["prod", "dev"]
    assert stages(db) == ["prod", "dev"]


@pytest.mark.parametrize("slug", ["", "Shop", "-shop", "shop_1", "sh op", "a" * 64, "ßhop"])
def test_create_refuses_a_bad_slug(db: Database, slug: str) -> None:
    refused_create(db, InvalidInput, "invalid_slug", slug)


@pytest.mark.parametrize(
    ("wanted", "code"),
    [
        ([], "invalid_stages"),
        (["dev", "dev"], "invalid_stages"),
        ([f"s{i}" for i in range(projects.MAX_STAGES + 1)], "invalid_stages"),
        (["Prod"], "invalid_slug"),
        (["dev", "pro d"], "invalid_slug"),
    ],
    ids=["empty", "twice", "too-many", "upper", "space"],
)
def test_create_refuses_a_bad_stage_list(db: Database, wanted: list[str], code: str) -> None:
    refused_create(db, InvalidInput, code, stages=wanted)


def test_create_takes_max_stages(db: Database) -> None:
    wanted = [f"s{i}" for i in range(projects.MAX_STAGES)]
    assert create(db, stages=wanted) == wanted


def test_create_refuses_a_duplicate_slug(db: Database) -> None:
    create(db)
    refused_create(db, Conflict, "duplicate")
    assert create(db, "shop-2") == ["development", "staging", "production"]


def test_list_all_is_ordered_by_slug(db: Database) -> None:
    for slug in ("zoo", "abc", "mid"):
        create(db, slug)
    with db.session() as s:
        assert [p.slug for p in projects.list_all(s)] == ["abc", "mid", "zoo"]


def test_update_changes_stages_and_description_in_one_audit_row(db: Database) -> None:
    create(db)
    with db.session() as s:
        projects.update(s, ADA, "shop", stages=["production", "qa"], description="new")
    with db.session() as s:
        row = projects.get(s, "shop")
        assert (row.stages, row.description) == (["production", "qa"], "new")
    assert audit_rows(db)[1:] == [
        (
            "ada",
            "project.update",
            "shop",
            {"via": "token", "stages": ["production", "qa"], "description": True},
        )
    ]


def test_update_refuses_a_bad_stage_list_and_keeps_the_old(db: Database) -> None:
    create(db)
    for wanted in ([], ["a", "a"], ["Bad"]):
        with pytest.raises(InvalidInput), db.session() as s:
            projects.update(s, ADA, "shop", stages=wanted, description="changed")
    assert stages(db) == ["development", "staging", "production"]
    with db.session() as s:
        assert projects.get(s, "shop").description == ""
    assert len(audit_rows(db)) == 1  # the create's


def test_a_stage_that_holds_workloads_is_not_removed(db: Database, registry: Registry) -> None:
    create(db)
    make(db, registry, name="web", project="shop", stage="staging")
    audited = audit_rows(db)
    with pytest.raises(Conflict) as caught, db.session() as s:
        projects.update(s, ADA, "shop", stages=["development", "production"])
    assert caught.value.code == "stage_in_use"
    assert "staging" in caught.value.message and "web" in caught.value.message
    assert stages(db) == ["development", "staging", "production"]
    assert audit_rows(db) == audited
    # reordering it, or removing another, is fine
    with db.session() as s:
        projects.update(s, ADA, "shop", stages=["staging", "development"])
    assert stages(db) == ["staging", "development"]


def test_update_and_delete_of_a_missing_project_are_not_found(db: Database) -> None:
    with pytest.raises(NotFound), db.session() as s:
        projects.update(s, ADA, "nope", description="x")
    with pytest.raises(NotFound), db.session() as s:
        projects.delete(s, ADA, "nope")
    assert audit_rows(db) == []


def test_delete_removes_an_empty_project_with_one_audit_row(db: Database) -> None:
    create(db)
    create(db, "other")
    with db.session() as s:
        projects.delete(s, ADA, "shop")
    with db.session() as s:
        assert [p.slug for p in projects.list_all(s)] == ["other"]
    assert audit_rows(db)[-1] == ("ada", "project.delete", "shop", {"via": "token"})
    assert len(audit_rows(db)) == 3


def test_a_project_with_workloads_is_not_deleted(db: Database, registry: Registry) -> None:
    create(db)
    make(db, registry, name="web", project="shop", stage="production")
    make(db, registry, name="api", project="shop", stage="development")
    audited = audit_rows(db)
    with pytest.raises(Conflict) as caught, db.session() as s:
        projects.delete(s, ADA, "shop")
    assert caught.value.code == "project_not_empty"
    assert "2 workload(s)" in caught.value.message
    assert count(db) == 1
    assert audit_rows(db) == audited
