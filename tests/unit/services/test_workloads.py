"""Workloads (services/workloads.py) on the real store, SQLite and PostgreSQL when
MOORAGE_TEST_DATABASE_URL is set: a refusal writes nothing (no row, no audit row), a
change writes its rows and one audit row, secrets come out masked."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, inspect, select, text

from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM, Actor
from moorage.server import load_registry
from moorage.services import projects, workloads
from moorage.settings import Settings
from moorage.store.db import Database, alembic_config
from moorage.store.states import DesiredState
from moorage.store.tables import AuditEntry, Base, Binding, Deployment, Workload
from tests.unit.store import test_store

pg_url = test_store.pg_url


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test: migrating per test is most of a
    test's time."""
    path = tmp_path_factory.mktemp("migrated") / "moorage.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.dispose()
    return path


@pytest.fixture(params=test_store.BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path, migrated: Path) -> Iterator[Database]:
    """A fresh, migrated store of the test's own: SQLite, and PostgreSQL when
    MOORAGE_TEST_DATABASE_URL is set (as ``tests/unit/store/test_store.py``'s ``db``)."""
    if request.param == "sqlite":
        shutil.copyfile(migrated, tmp_path / "moorage.db")
        database = Database(f"sqlite:///{tmp_path / 'moorage.db'}")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        emptied(database)
    yield database
    database.dispose()


@functools.cache
def head_revision() -> str | None:
    """The newest Alembic revision of Moorage's migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def emptied(database: Database) -> None:
    """Leave ``database`` (PostgreSQL) as ``migrate()`` makes a new one, which has no rows
    (``store/db.migrate`` builds it from the tables): every table's rows deleted when an
    earlier test left exactly the schema at head (migrating anew took most of a test's
    time, about 0.8 s each on two cores), else everything dropped and migrated."""
    tables = set(Base.metadata.tables)
    with database.engine.begin() as conn:
        found = set(inspect(conn).get_table_names())
        if (
            found == tables | {"alembic_version"}
            and conn.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
        ):
            # DELETE, children first: a test leaves a few rows, and TRUNCATE's new files
            # for every table and index cost more (115 ms against a few).
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
            return
    test_store.rebuilt(database)


ADA = Actor(user_id="us_ada", username="ada", role="admin", via="token")
SETTINGS = Settings(data_dir=Path("/nonexistent/moorage"))
IMAGE = {"image": "moorage-test/httpd:1"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture
def shop(db: Database) -> Database:
    """The store with project ``shop`` (stages development, production) and no audit rows."""
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop", stages=["development", "production"])
        s.execute(delete(AuditEntry))
    return db


def make(db: Database, registry: Registry, name: str = "web", **fields: Any) -> Workload:
    args: dict[str, Any] = {
        "name": name,
        "kind": "image",
        "project": "shop",
        "stage": "production",
        "config": IMAGE,
    }
    args.update(fields)
    with db.session() as s:
        made = workloads.create(s, ADA, registry, SETTINGS, **args)
        s.flush()
        s.expunge(made)
        return made


def count(db: Database, table: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def audit_rows(db: Database) -> list[tuple[str, str, str, dict[str, Any]]]:
    with db.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.target_id, r.details) for r in rows]


def refused(
    db: Database, registry: Registry, error: type[MoorageError], code: str, **fields: Any
) -> MoorageError:
    """Creating with ``fields`` fails with ``error``/``code`` and writes nothing."""
    before = count(db, Workload)
    with pytest.raises(error) as caught:
        make(db, registry, **fields)
    assert caught.value.code == code
    assert count(db, Workload) == before
    assert audit_rows(db) == []
    return caught.value


def test_create_writes_the_row_and_one_audit_row(shop: Database, registry: Registry) -> None:
    made = make(shop, registry)
    with shop.session() as s:
        row = s.get(Workload, made.id)
        assert row is not None
        assert (row.name, row.kind, row.stage) == ("web", "image", "production")
        assert row.ref_id == made.id  # no ref_id given: the id is the ref
        assert row.config["image"] == "moorage-test/httpd:1"
        assert row.config["init"] is True  # the model's defaults are stored
        assert row.desired_state == "running"
        assert row.project_id == projects.get(s, "shop").id
    assert made.id.startswith("wl_")
    assert audit_rows(shop) == [
        (
            "ada",
            "workload.create",
            made.id,
            {
                "via": "token",
                "name": "web",
                "kind": "image",
                "project": "shop",
                "stage": "production",
            },
        )
    ]


@pytest.mark.parametrize(
    "name",
    ["", "Web", "-web", "web_1", "we b", "a" * 64, "wéb", "web\n"],
)
def test_create_refuses_a_name_that_is_not_a_slug(
    shop: Database, registry: Registry, name: str
) -> None:
    refused(shop, registry, InvalidInput, "invalid_slug", name=name)


@pytest.mark.parametrize("name", ["a", "0", "a" * 63, "web-1-2"])
def test_create_takes_a_name_at_the_slug_limits(
    shop: Database, registry: Registry, name: str
) -> None:
    assert make(shop, registry, name=name).name == name


def test_create_refuses_an_unknown_project_or_stage(shop: Database, registry: Registry) -> None:
    refused(shop, registry, InvalidInput, "unknown_project", project="nope")
    error = refused(shop, registry, InvalidInput, "unknown_stage", stage="staging")
    assert "development, production" in error.message


def test_create_refuses_an_unknown_kind_and_a_bad_config(
    shop: Database, registry: Registry
) -> None:
    refused(shop, registry, InvalidInput, "unknown_kind", kind="nope")
    refused(shop, registry, InvalidInput, "invalid_config", config=["not", "an", "object"])
    error = refused(shop, registry, InvalidInput, "invalid_config", config={**IMAGE, "extra": 1})
    assert any(d["field"] == "extra" for d in error.details)
    refused(shop, registry, InvalidInput, "invalid_config", config={"image": "\ud800"})


@pytest.mark.parametrize("ref_id", ["-lead", "has space", "x" * 129, "é"])
def test_create_refuses_a_bad_ref_id(shop: Database, registry: Registry, ref_id: str) -> None:
    refused(shop, registry, InvalidInput, "invalid_ref_id", ref_id=ref_id)


def test_create_takes_a_ref_id_at_its_limit(shop: Database, registry: Registry) -> None:
    ref = "A" + "._:/-9" * 21 + "x"  # 128 characters
    assert len(ref) == 128
    assert make(shop, registry, ref_id=ref).ref_id == ref


def test_create_refuses_a_duplicate_name_in_the_stage_only(
    shop: Database, registry: Registry
) -> None:
    make(shop, registry)
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    error = refused(shop, registry, Conflict, "duplicate")
    assert "named 'web'" in error.message
    # the same name in another stage is another workload
    assert make(shop, registry, stage="development").stage == "development"


def test_create_refuses_a_duplicate_ref_id_of_the_same_kind(
    shop: Database, registry: Registry
) -> None:
    make(shop, registry, ref_id="git:shop/web")
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    error = refused(shop, registry, Conflict, "duplicate", name="other", ref_id="git:shop/web")
    assert "ref_id" in error.message


def test_create_refuses_a_host_port_another_workload_publishes(
    shop: Database, registry: Registry
) -> None:
    first = make(shop, registry, config={**IMAGE, "ports": [{"container": 80, "host": 8080}]})
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    error = refused(
        shop,
        registry,
        Conflict,
        "port_in_use",
        name="other",
        stage="development",
        config={**IMAGE, "ports": [{"container": 8000, "host": 8080}]},
    )
    assert error.details == [
        {"field": "config.ports", "port": 8080, "workload": first.id, "workload_name": "web"}
    ]
    # the same number over udp, and a port left for Docker to pick, are no clash
    make(
        shop,
        registry,
        name="udp",
        config={**IMAGE, "ports": [{"container": 53, "host": 8080, "protocol": "udp"}]},
    )
    make(shop, registry, name="picked", config={**IMAGE, "ports": [{"container": 80}]})
    assert count(shop, Workload) == 3


def test_shown_config_masks_the_registry_password(shop: Database, registry: Registry) -> None:
    auth = {"username": "bot", "password": "hunter2-secret"}
    made = make(shop, registry, config={**IMAGE, "registry_auth": auth})
    assert made.config["registry_auth"]["password"] == "hunter2-secret"  # kept in clear
    shown = workloads.shown_config(registry, "image", made.config)
    assert shown["registry_auth"]["username"] == "bot"
    assert "hunter2-secret" not in repr(shown)
    assert all("hunter2-secret" not in repr(row) for row in audit_rows(shop))
    assert workloads.shown_config(registry, "nope", made.config) == {}


def test_get_and_listed_answer_not_found(shop: Database) -> None:
    with shop.session() as s:
        with pytest.raises(NotFound):
            workloads.get(s, "wl_missing")
        with pytest.raises(NotFound):
            workloads.listed(s, "wl_missing")
        with pytest.raises(NotFound):
            workloads.deployments(s, "wl_missing", limit=5)


def test_list_filtered_orders_and_filters(shop: Database, registry: Registry) -> None:
    make(shop, registry, name="zeta")
    make(shop, registry, name="alpha")
    make(shop, registry, name="mid", stage="development")
    with shop.session() as s:
        everything = workloads.list_filtered(s)
        assert [(r.stage, r.name) for r in everything] == [
            ("development", "mid"),
            ("production", "alpha"),
            ("production", "zeta"),
        ]
        assert {r.project for r in everything} == {"shop"}
        assert all(r.last_id is None for r in everything)
        assert [r.name for r in workloads.list_filtered(s, stage="development")] == ["mid"]
        assert workloads.list_filtered(s, project="other") == []
        assert workloads.list_filtered(s, kind="compose") == []


def test_update_patches_the_config_and_writes_one_audit_row(
    shop: Database, registry: Registry
) -> None:
    made = make(shop, registry, config={**IMAGE, "command": ["serve"]})
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    with shop.session() as s:
        workloads.update(
            s, ADA, registry, SETTINGS, made.id, config={"command": None, "stop_timeout": 3}
        )
    with shop.session() as s:
        row = s.get(Workload, made.id)
        assert row is not None
        assert "command" not in row.config  # null in a merge patch removes the key
        assert row.config["stop_timeout"] == 3
        assert row.config["image"] == "moorage-test/httpd:1"
    assert audit_rows(shop) == [
        ("ada", "workload.update", made.id, {"via": "token", "fields": ["config"]})
    ]


def test_update_renames_and_names_each_changed_field(shop: Database, registry: Registry) -> None:
    made = make(shop, registry)
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    with shop.session() as s:
        workloads.update(s, ADA, registry, SETTINGS, made.id, name="web2", ref_id="r/1")
        # the same values again change nothing
        workloads.update(s, ADA, registry, SETTINGS, made.id, name="web2", ref_id="r/1")
    with shop.session() as s:
        row = s.get(Workload, made.id)
        assert row is not None and (row.name, row.ref_id) == ("web2", "r/1")
    assert [r[3]["fields"] for r in audit_rows(shop)] == [["name", "ref_id"], []]


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"config": ["x"]}, InvalidInput, "invalid_config"),
        ({"config": {"image": ""}}, InvalidInput, "invalid_config"),
        ({"config": {"stop_timeout": 9}, "name": "Bad Name"}, InvalidInput, "invalid_slug"),
        ({"ref_id": "bad ref"}, InvalidInput, "invalid_ref_id"),
        ({"name": "other"}, Conflict, "duplicate"),
        ({"config": {"ports": [{"container": 80, "host": 9090}]}}, Conflict, "port_in_use"),
    ],
)
def test_update_refusals_change_nothing(
    shop: Database,
    registry: Registry,
    fields: dict[str, Any],
    error: type[MoorageError],
    code: str,
) -> None:
    made = make(shop, registry)
    make(shop, registry, name="other", config={**IMAGE, "ports": [{"container": 1, "host": 9090}]})
    with shop.session() as s:
        s.execute(delete(AuditEntry))
        before = dict(s.get_one(Workload, made.id).config)
    with pytest.raises(error) as caught, shop.session() as s:
        workloads.update(s, ADA, registry, SETTINGS, made.id, **fields)
    assert caught.value.code == code
    with shop.session() as s:
        row = s.get_one(Workload, made.id)
        assert (row.name, row.ref_id, row.config) == ("web", made.id, before)
    assert audit_rows(shop) == []


def test_update_of_a_missing_workload_is_not_found(shop: Database, registry: Registry) -> None:
    with pytest.raises(NotFound), shop.session() as s:
        workloads.update(s, ADA, registry, SETTINGS, "wl_missing", name="x")
    assert audit_rows(shop) == []


def test_delete_takes_its_bindings_and_deployments_along(
    shop: Database, registry: Registry
) -> None:
    made = make(shop, registry)
    kept = make(shop, registry, name="kept")
    with shop.session() as s:
        for workload_id in (made.id, kept.id):
            s.add(Deployment(id=f"dp_{workload_id}", workload_id=workload_id, reason="manual"))
        s.execute(delete(AuditEntry))
    with shop.session() as s:
        workloads.delete(s, ADA, made.id)
    with shop.session() as s:
        assert s.get(Workload, made.id) is None
        assert list(s.scalars(select(Deployment.workload_id))) == [kept.id]
        assert s.scalar(select(func.count()).select_from(Binding)) == 0
    assert audit_rows(shop) == [
        ("ada", "workload.delete", made.id, {"via": "token", "name": "web"})
    ]
    with pytest.raises(NotFound), shop.session() as s:
        workloads.delete(s, ADA, made.id)
    assert len(audit_rows(shop)) == 1


def test_set_desired_state(shop: Database, registry: Registry) -> None:
    made = make(shop, registry)
    with shop.session() as s:
        workloads.set_desired_state(s, made.id, DesiredState("stopped"))
    with shop.session() as s:
        assert s.get_one(Workload, made.id).desired_state == "stopped"
        with pytest.raises(NotFound):
            workloads.set_desired_state(s, "wl_missing", DesiredState("running"))


def test_deployment_of_another_workload_is_not_found(shop: Database, registry: Registry) -> None:
    one, two = make(shop, registry), make(shop, registry, name="two")
    with shop.session() as s:
        s.add(Deployment(id="dp_1", workload_id=one.id, reason="manual"))
    with shop.session() as s:
        assert workloads.deployment(s, one.id, "dp_1").id == "dp_1"
        with pytest.raises(NotFound):
            workloads.deployment(s, two.id, "dp_1")
