"""A workload's volume list (services/volumes.py) on the real store, with its directories
under tmp_path: every refusal keeps the old list and writes no audit row; a replace
writes the rows in order and one audit row."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from moorage.errors import Conflict, Forbidden, InvalidInput, MoorageError, NotFound
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM, Actor
from moorage.services import projects, volumes, workloads
from moorage.services.volumes import MAX_VOLUMES, VolumeSpec
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.tables import AuditEntry, Volume, Workload
from tests.unit.services.test_workloads import IMAGE, audit_rows, db, migrated, pg_url, registry

__all__ = ["db", "migrated", "pg_url", "registry"]  # fixtures shared with test_workloads

ADA = Actor(user_id="us_ada", username="ada", role="admin", via="token")
OLGA = Actor(user_id="us_olga", username="olga", role="operator", via="session")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "roots" / "srv").mkdir(parents=True)
    return Settings(data_dir=tmp_path / "var", volume_roots=(tmp_path / "roots",))


@pytest.fixture
def shop(db: Database, registry: Registry, settings: Settings) -> Database:
    """Project ``shop`` with image workloads ``web`` and ``api`` in production and no
    audit rows."""
    with db.session() as s:
        projects.create(s, SYSTEM, slug="shop", stages=["staging", "production"])
        for name in ("web", "api"):
            workloads.create(
                s,
                SYSTEM,
                registry,
                settings,
                name=name,
                kind="image",
                project="shop",
                stage="production",
                config=IMAGE,
                ref_id=name,
            )
        s.execute(delete(AuditEntry))
    return db


def wid(db: Database, name: str) -> str:
    with db.session() as s:
        found = s.scalar(select(Workload.id).where(Workload.name == name))
        assert found is not None
        return found


def replace(
    db: Database,
    registry: Registry,
    settings: Settings,
    name: str,
    wanted: list[VolumeSpec],
    actor: Actor = ADA,
) -> list[VolumeSpec]:
    with db.session() as s:
        return volumes.replace(s, actor, settings, registry, wid(db, name), wanted)


def stored(db: Database, name: str) -> list[dict[str, Any]]:
    with db.session() as s:
        return [v.as_dict() for v in volumes.read(s, wid(db, name))]


def forget_audit(db: Database) -> None:
    with db.session() as s:
        s.execute(delete(AuditEntry))


def refused(
    db: Database,
    registry: Registry,
    settings: Settings,
    wanted: list[VolumeSpec],
    error: type[MoorageError],
    code: str,
    *,
    name: str = "web",
    actor: Actor = ADA,
) -> MoorageError:
    before = stored(db, name)
    with pytest.raises(error) as caught:
        replace(db, registry, settings, name, wanted, actor)
    assert caught.value.code == code
    assert stored(db, name) == before
    assert audit_rows(db) == []
    return caught.value


DATA = VolumeSpec("data", "stage", "web/data", "/data")


def test_replace_writes_rows_in_order_and_one_audit_row(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    wanted = [
        VolumeSpec("logs", "stage", "web/logs", "//var/./log/", read_only=True),
        VolumeSpec("conf", "project", "conf", "/etc/app", shared=True),
    ]
    saved = replace(shop, registry, settings, "web", wanted)
    assert [v.target for v in saved] == ["/var/log", "/etc/app"]  # normalized
    assert stored(shop, "web") == [v.as_dict() for v in saved]
    with shop.session() as s:
        rows = s.scalars(select(Volume).order_by(Volume.position))
        assert [(r.position, r.name) for r in rows] == [(0, "logs"), (1, "conf")]
    assert audit_rows(shop) == [
        (
            "ada",
            "workload.volumes.replace",
            wid(shop, "web"),
            {"via": "token", "volumes": [v.as_dict() for v in saved]},
        )
    ]
    assert not (settings.data_dir / "volumes").exists()  # nothing made on disk


def test_replace_with_an_empty_list_removes_every_volume(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    replace(shop, registry, settings, "web", [DATA])
    forget_audit(shop)
    assert replace(shop, registry, settings, "web", []) == []
    assert stored(shop, "web") == []
    assert [r[3]["volumes"] for r in audit_rows(shop)] == [[]]


@pytest.mark.parametrize(
    "wanted",
    [
        [VolumeSpec("Data", "stage", "d", "/d")],
        [VolumeSpec("", "stage", "d", "/d")],
        [VolumeSpec("a", "stage", "a", "/a"), VolumeSpec("a", "stage", "b", "/b")],
        [VolumeSpec("a", "stage", "a", "/srv"), VolumeSpec("b", "stage", "b", "/srv/./")],
        [VolumeSpec("a", "bucket", "a", "/a")],
        [VolumeSpec("a", "stage", "../escape", "/a")],
        [VolumeSpec("a", "stage", "/abs", "/a")],
        [VolumeSpec("a", "stage", "", "/a")],
        [VolumeSpec("a", "stage", ".", "/a")],
        [VolumeSpec("a", "stage", "a\nb", "/a")],
        [VolumeSpec("a", "stage", "a\\b", "/a")],
        [VolumeSpec("a", "stage", "a", "relative")],
        [VolumeSpec("a", "stage", "a", "/")],
        [VolumeSpec("a", "stage", "a", "/x/../etc")],
        [VolumeSpec("a", "absolute", "relative", "/a")],
        [VolumeSpec("a", "absolute", "/etc", "/a")],
    ],
    ids=lambda wanted: repr([(v.name, v.scope, v.source, v.target) for v in wanted]),
)
def test_replace_refuses_a_bad_volume_and_keeps_the_old_list(
    shop: Database, registry: Registry, settings: Settings, wanted: list[VolumeSpec]
) -> None:
    replace(shop, registry, settings, "web", [DATA])
    forget_audit(shop)
    refused(shop, registry, settings, wanted, InvalidInput, "invalid_volume")
    assert stored(shop, "web") == [DATA.as_dict()]


def test_at_most_max_volumes(shop: Database, registry: Registry, settings: Settings) -> None:
    many = [VolumeSpec(f"v{i}", "stage", f"web/v{i}", f"/v{i}") for i in range(MAX_VOLUMES + 1)]
    error = refused(shop, registry, settings, many, InvalidInput, "invalid_volume")
    assert str(MAX_VOLUMES) in error.message
    assert len(replace(shop, registry, settings, "web", many[:MAX_VOLUMES])) == MAX_VOLUMES


def test_absolute_volumes_need_volume_roots(
    shop: Database, registry: Registry, tmp_path: Path
) -> None:
    bare = Settings(data_dir=tmp_path / "var")
    wanted = [VolumeSpec("a", "absolute", str(tmp_path / "roots" / "srv"), "/a")]
    error = refused(shop, registry, bare, wanted, InvalidInput, "invalid_volume")
    assert "MOORAGE_VOLUME_ROOTS" in error.message


def test_a_stack_volume_names_its_service(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    with shop.session() as s:
        web = workloads.get(s, wid(shop, "web"))
        s.add(
            Workload(
                id="wl_compose",
                kind="compose",
                ref_id="wl_compose",
                name="stack",
                project_id=web.project_id,
                stage="production",
                config={"compose": "services:\n  web:\n    image: x\n"},
                host_powers=[],
            )
        )
    # A stack's volume names one of its services (SPEC 10); an image's names none.
    refused(shop, registry, settings, [DATA], InvalidInput, "unknown_service", name="stack")
    other = dataclasses.replace(DATA, service="db")
    refused(shop, registry, settings, [other], InvalidInput, "unknown_service", name="stack")
    refused(shop, registry, settings, [other], InvalidInput, "invalid_volume", name="web")
    assert replace(shop, registry, settings, "stack", []) == []  # an empty list is no volume


def test_a_missing_workload_is_not_found(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    with pytest.raises(NotFound), shop.session() as s:
        volumes.replace(s, ADA, settings, registry, "wl_missing", [DATA])
    with pytest.raises(NotFound), shop.session() as s:
        volumes.read(s, "wl_missing")
    assert audit_rows(shop) == []


def test_nested_volumes_of_one_workload_are_refused(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    wanted = [VolumeSpec("outer", "stage", "a", "/o"), VolumeSpec("inner", "stage", "a/b", "/i")]
    error = refused(shop, registry, settings, wanted, Conflict, "volume_nested")
    assert "'outer'" in error.message and "'inner'" in error.message
    # the same directory twice is not nesting
    same = [VolumeSpec("one", "stage", "a", "/o"), VolumeSpec("two", "stage", "a/", "/t")]
    assert len(replace(shop, registry, settings, "web", same)) == 2


def test_a_volume_nested_with_another_workloads_is_refused(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    replace(shop, registry, settings, "api", [VolumeSpec("all", "stage", "api", "/all")])
    forget_audit(shop)
    wanted = [VolumeSpec("mine", "stage", "api/inner", "/mine")]
    error = refused(shop, registry, settings, wanted, Conflict, "volume_nested")
    assert error.details == [
        {"field": "mine", "workload": wid(shop, "api"), "workload_name": "api", "volume": "all"}
    ]


def test_nesting_is_found_through_a_symlink(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    stage_dir = settings.data_dir / "volumes" / "shop" / "production"
    (stage_dir / "api" / "inner").mkdir(parents=True)
    (stage_dir / "link").symlink_to(stage_dir / "api" / "inner")
    replace(shop, registry, settings, "api", [VolumeSpec("all", "stage", "api", "/all")])
    forget_audit(shop)
    wanted = [VolumeSpec("mine", "stage", "link", "/mine")]
    refused(shop, registry, settings, wanted, Conflict, "volume_nested")


@pytest.mark.parametrize("other_workload", [False, True], ids=["same-workload", "other-workload"])
def test_a_source_through_a_link_inside_another_volume_is_nested(
    shop: Database, registry: Registry, settings: Settings, other_workload: bool
) -> None:
    """The helper's reproduction: volume ``x`` is mounted by a container, which makes the
    link ``x/d -> ../y``; a volume ``x/d`` then resolved to ``y`` (the workload's own, so
    nothing nested), and after a start the container pointed ``d`` at ``/``, which
    Docker bound. As written, ``x/d`` lies inside ``x``: refused, whatever it resolves to."""
    stage_dir = settings.data_dir / "volumes" / "shop" / "production"
    (stage_dir / "x").mkdir(parents=True)
    (stage_dir / "y").mkdir(parents=True)
    (stage_dir / "x" / "d").symlink_to("../y")
    x, y = VolumeSpec("x", "stage", "x", "/data"), VolumeSpec("y", "stage", "y", "/y")
    through = VolumeSpec("v", "stage", "x/d", "/host")
    if other_workload:
        replace(shop, registry, settings, "api", [x])
        forget_audit(shop)
        refused(shop, registry, settings, [y, through], Conflict, "volume_nested")
    else:
        replace(shop, registry, settings, "web", [x, y])
        forget_audit(shop)
        error = refused(shop, registry, settings, [x, y, through], Conflict, "volume_nested")
        assert "'x'" in error.message and "'v'" in error.message, error.message


def test_a_source_linked_out_of_its_scope_is_refused(
    shop: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    stage_dir = settings.data_dir / "volumes" / "shop" / "production"
    stage_dir.mkdir(parents=True)
    (stage_dir / "out").symlink_to(tmp_path)
    wanted = [VolumeSpec("out", "stage", "out", "/out")]
    refused(shop, registry, settings, wanted, InvalidInput, "invalid_volume")


@pytest.mark.parametrize(
    ("mine", "theirs", "allowed"),
    [
        (False, False, False),
        (True, False, False),
        (False, True, False),
        (True, True, True),
    ],
)
def test_sharing_a_directory_needs_shared_on_both_sides(
    shop: Database,
    registry: Registry,
    settings: Settings,
    mine: bool,
    theirs: bool,
    allowed: bool,
) -> None:
    replace(shop, registry, settings, "api", [VolumeSpec("d", "project", "d", "/d", shared=theirs)])
    forget_audit(shop)
    wanted = [VolumeSpec("d", "project", "d", "/d", shared=mine)]
    if allowed:
        assert len(replace(shop, registry, settings, "web", wanted)) == 1
        assert len(audit_rows(shop)) == 1
    else:
        error = refused(shop, registry, settings, wanted, Conflict, "volume_in_use")
        assert error.details[0]["workload"] == wid(shop, "api")


def test_sharing_into_a_workload_holding_an_absolute_volume_is_the_admins(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    """A helper's finding: an admin's shared volume on a workload holding powers (here an
    absolute volume) let an operator mount the same directory and plant what it runs."""
    absolute = VolumeSpec("srv", "absolute", str(settings.volume_roots[0] / "srv"), "/srv")
    shared = VolumeSpec("code", "project", "code", "/app", shared=True)
    replace(shop, registry, settings, "api", [absolute, shared], actor=ADA)
    forget_audit(shop)
    mine = VolumeSpec("code", "project", "code", "/plant", shared=True)
    refused(shop, registry, settings, [mine], Forbidden, "needs_admin", actor=OLGA)
    assert len(replace(shop, registry, settings, "web", [mine], actor=ADA)) == 1


def test_an_operator_may_not_touch_an_absolute_volume(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    absolute = VolumeSpec("srv", "absolute", str(settings.volume_roots[0] / "srv"), "/srv")
    refused(shop, registry, settings, [absolute], Forbidden, "forbidden", actor=OLGA)
    replace(shop, registry, settings, "web", [absolute], actor=ADA)
    forget_audit(shop)
    # any change of the volumes of a workload holding one is the admin's (a volume over
    # /bin changes what runs with the host path), even keeping it as it is
    refused(shop, registry, settings, [absolute, DATA], Forbidden, "needs_admin", actor=OLGA)
    replace(shop, registry, settings, "web", [absolute, DATA], actor=ADA)
    assert [v["name"] for v in stored(shop, "web")] == ["srv", "data"]
    replace(shop, registry, settings, "web", [absolute, DATA], actor=OLGA)  # no change
    forget_audit(shop)
    # removing it, or changing it, is not
    refused(shop, registry, settings, [DATA], Forbidden, "forbidden", actor=OLGA)
    read_only = VolumeSpec(absolute.name, "absolute", absolute.source, "/srv", read_only=True)
    refused(shop, registry, settings, [read_only, DATA], Forbidden, "forbidden", actor=OLGA)


@pytest.mark.parametrize(
    "source",
    [
        "/nowhere/below/the/roots",  # an admin would be told about MOORAGE_VOLUME_ROOTS
        "relative/path",  # ... that an absolute source starts with '/'
        "/srv/../etc",  # ... that '..' is not allowed
    ],
)
def test_an_operator_is_told_the_role_rule_before_any_path_rule(
    shop: Database, registry: Registry, settings: Settings, tmp_path: Path, source: str
) -> None:
    """Whatever is wrong with the path too, an operator's absolute volume is refused
    for what stops them (the role), never with advice only an admin could follow."""
    for each in (Settings(data_dir=tmp_path / "var"), settings):
        wanted = [VolumeSpec("srv", "absolute", source, "/srv")]
        error = refused(shop, registry, each, wanted, Forbidden, "forbidden", actor=OLGA)
        assert "only an admin" in error.message and "MOORAGE_" not in error.message


def test_two_absolute_volumes_may_share_a_path(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    source = str(settings.volume_roots[0] / "srv")
    replace(shop, registry, settings, "api", [VolumeSpec("srv", "absolute", source, "/srv")])
    replace(shop, registry, settings, "web", [VolumeSpec("srv", "absolute", source, "/srv")])
    assert stored(shop, "web")[0]["source"] == source


def test_an_operator_may_not_clone_what_an_absolute_volume_held_when_captured(
    shop: Database, registry: Registry, settings: Settings
) -> None:
    """A snapshot captured while ``srv`` was an absolute volume (a host directory an
    admin chose), then ``srv`` moved to a stage directory: the archive's download was
    the admin's, but an operator's clone unpacked the host directory's files into a
    workload of their own (attacker pass H)."""
    from moorage.errors import Forbidden
    from moorage.services.locks import WorkloadLocks
    from moorage.snapshots.clone import Cloner
    from moorage.store.states import SnapshotOrigin, SnapshotStatus
    from moorage.store.tables import Snapshot

    host = str(settings.volume_roots[0] / "srv")
    replace(shop, registry, settings, "web", [VolumeSpec("srv", "absolute", host, "/srv")])
    web = wid(shop, "web")
    manifest = {"volumes": [{"name": "srv", "scope": "absolute", "source": host, "index": 0}]}
    with shop.session() as s:
        s.add(
            Snapshot(
                id="sn_abs",
                workload_id=web,
                origin=SnapshotOrigin.MANUAL,
                mode="",
                status=SnapshotStatus.READY,
                volumes=["srv"],
                manifest=manifest,
            )
        )
    replace(shop, registry, settings, "web", [VolumeSpec("srv", "stage", "web/srv", "/srv")])
    cloner = Cloner(settings, shop, registry, WorkloadLocks())
    with shop.session() as s, pytest.raises(Forbidden) as refused_:
        cloner.clone(s, OLGA, web, "sn_abs", name="copy", stage=None, deploy=False)
    assert refused_.value.code == "needs_admin"
    assert not (settings.data_dir / "volumes" / "shop" / "production" / "copy").exists()
