"""Storage targets (services/storage_targets.py) of the ``local`` kind in tmp_path, on
the real store: making one leaves its key object on the target (or adopts the one there
when the passphrase opens it), credentials are sealed and shown masked, the passphrase is
kept nowhere, a probe's failure is a result recorded on the target; each refusal writes
no row, no audit row and nothing on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from moorage.errors import Conflict, InvalidInput, MoorageError, NotFound, TargetError
from moorage.plugins.kind_config import MASK
from moorage.plugins.registry import Registry
from moorage.security import sealing
from moorage.services import storage_targets as targets
from moorage.settings import Settings
from moorage.storage.encryption import new_keypair
from moorage.store.db import Database
from moorage.store.tables import StorageTarget
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, audit_rows

db, migrated, pg_url, registry = fixtures.db, fixtures.migrated, fixtures.pg_url, fixtures.registry

PASSPHRASE = "twelve chars"  # as short as one may be
S3_SECRET = "s3-secret-access-key-value"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


def create(
    db: Database,
    registry: Registry,
    settings: Settings,
    path: Path,
    *,
    name: str = "disk",
    passphrase: str = PASSPHRASE,
    kind: str = "local",
    config: dict[str, Any] | None = None,
) -> str:
    with db.session() as s:
        return targets.create(
            s,
            ADA,
            registry,
            settings,
            name=name,
            kind=kind,
            config={"path": str(path)} if config is None else config,
            passphrase=passphrase,
        ).id


def local_target(db: Database, settings: Settings, path: Path, name: str = "disk") -> str:
    """A local target's row and key object as ``create`` leaves them, without the
    passphrase's scrypt (seconds each): for the rules that come after the making."""
    keys = new_keypair()
    (path / targets.KEY_OBJECT).parent.mkdir(parents=True)
    (path / targets.KEY_OBJECT).write_bytes(b"a wrapped identity")
    with db.session() as s:
        made = StorageTarget(
            id=f"st_{name}",
            name=name,
            kind="local",
            config={"path": str(path)},
            sealed=sealing.seal(settings.data_dir, {"secrets": {}, "identity": keys.identity}),
            recipient=keys.recipient,
        )
        s.add(made)
        return made.id


def update(
    db: Database,
    registry: Registry,
    settings: Settings,
    target_id: str,
    *,
    name: str | None,
    patch: dict[str, Any] | None,
) -> None:
    with db.session() as s:
        targets.update(s, ADA, registry, settings, target_id, name=name, config_patch=patch)


def row(db: Database, target_id: str) -> StorageTarget:
    with db.session() as s:
        found = targets.get(s, target_id)
        s.expunge(found)
        return found


def count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(StorageTarget)) or 0)


def refused(
    db: Database,
    registry: Registry,
    settings: Settings,
    path: Path,
    error: type[MoorageError],
    code: str,
    **fields: Any,
) -> None:
    before, audited = count(db), audit_rows(db)
    with pytest.raises(error) as caught:
        create(db, registry, settings, path, **fields)
    assert caught.value.code == code
    assert count(db) == before
    assert audit_rows(db) == audited


def test_create_leaves_a_wrapped_key_and_seals_the_identity(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    disk = tmp_path / "backup" / "moorage"
    assert len(PASSPHRASE) == targets.MIN_PASSPHRASE  # the shortest is taken
    target_id = create(db, registry, settings, disk)
    made = row(db, target_id)
    assert (made.name, made.kind, made.config) == ("disk", "local", {"path": str(disk)})
    assert made.recipient.startswith("age1")
    key = (disk / targets.KEY_OBJECT).read_bytes()
    assert key and PASSPHRASE.encode() not in key
    assert sealing.unseal(settings.data_dir, made.sealed)["secrets"] == {}
    identity = targets.identity_of(settings, made)
    assert identity.startswith("AGE-SECRET-KEY-")
    assert identity not in (disk / targets.KEY_OBJECT).read_text(errors="replace")
    assert audit_rows(db) == [
        (
            "ada",
            "storage_target.create",
            target_id,
            {"via": "token", "name": "disk", "kind": "local", "adopted": False},
        )
    ]
    assert PASSPHRASE not in repr(audit_rows(db)) and PASSPHRASE not in made.sealed


def test_a_target_holding_a_key_is_adopted_with_its_passphrase(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    first = row(db, create(db, registry, settings, disk))
    refused(
        db,
        registry,
        settings,
        disk,
        InvalidInput,
        "wrong_passphrase",
        name="again",
        passphrase="not the passphrase",
    )
    again = row(db, create(db, registry, settings, disk, name="again"))
    assert again.recipient == first.recipient
    assert targets.identity_of(settings, again) == targets.identity_of(settings, first)
    assert audit_rows(db)[-1][3]["adopted"] is True


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"name": "Disk"}, InvalidInput, "invalid_slug"),
        ({"name": ""}, InvalidInput, "invalid_slug"),
        ({"passphrase": "x" * (targets.MIN_PASSPHRASE - 1)}, InvalidInput, "invalid_input"),
        ({"kind": "tape"}, InvalidInput, "unknown_kind"),
        ({"config": {"path": "relative/dir"}}, InvalidInput, "invalid_config"),
        ({"config": {"path": "/srv/../etc"}}, InvalidInput, "invalid_config"),
        ({"config": {"path": "/srv//copies"}}, InvalidInput, "invalid_config"),
        ({"config": {"path": "/x", "extra": 1}}, InvalidInput, "invalid_config"),
        ({"config": {}}, InvalidInput, "invalid_config"),
    ],
)
def test_create_refusals_touch_nothing(
    db: Database,
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
    fields: dict[str, Any],
    error: type[MoorageError],
    code: str,
) -> None:
    disk = tmp_path / "disk"
    refused(db, registry, settings, disk, error, code, **fields)
    assert not disk.exists()


def test_a_duplicate_name_is_refused_before_connecting(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    local_target(db, settings, tmp_path / "one")
    refused(db, registry, settings, tmp_path / "two", Conflict, "duplicate")
    assert not (tmp_path / "two").exists()


def test_an_unusable_place_is_a_target_error(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    refused(db, registry, settings, tmp_path / "file" / "sub", TargetError, "target_unreachable")


def test_a_linked_place_is_refused(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    refused(db, registry, settings, tmp_path / "link", TargetError, "target_unreachable")
    assert list((tmp_path / "real").iterdir()) == []


def test_list_all_is_ordered_by_name(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    for name in ("zulu", "alpha"):
        local_target(db, settings, tmp_path / name, name=name)
    with db.session() as s:
        assert [t.name for t in targets.list_all(s)] == ["alpha", "zulu"]


def s3_target(db: Database, settings: Settings) -> str:
    """An s3 target's row as ``create`` leaves one (no server: update and shown only)."""
    with db.session() as s:
        made = StorageTarget(
            id="st_s3",
            name="bucket",
            kind="s3",
            config={
                "endpoint": "https://s3.example",
                "bucket": "bkt",
                "access_key_id": "AK",
                "prefix": "",
                "region": "us-east-1",
                "addressing": "auto",
            },
            sealed=sealing.seal(
                settings.data_dir,
                {"secrets": {"secret_access_key": S3_SECRET}, "identity": "AGE-SECRET-KEY-1X"},
            ),
            recipient="age1example",
        )
        s.add(made)
        return made.id


def test_shown_masks_the_credentials(db: Database, registry: Registry, settings: Settings) -> None:
    target_id = s3_target(db, settings)
    shown = targets.shown(registry, settings, row(db, target_id))
    assert shown.config["secret_access_key"] == MASK
    assert shown.config["bucket"] == "bkt"
    assert S3_SECRET not in repr(shown)
    assert targets.secret_fields(registry.storage["s3"].config_model) == {"secret_access_key"}
    assert targets.secret_fields(registry.storage["sftp"].config_model) == {
        "private_key",
        "password",
    }


def test_a_masked_credential_sent_back_keeps_its_value(
    db: Database, registry: Registry, settings: Settings
) -> None:
    target_id = s3_target(db, settings)
    update(db, registry, settings, target_id, name=None, patch={"secret_access_key": MASK})
    made = row(db, target_id)
    assert made.config["bucket"] == "bkt"
    assert "secret_access_key" not in made.config
    assert targets.full_config(settings, made)["secret_access_key"] == S3_SECRET
    assert targets.identity_of(settings, made) == "AGE-SECRET-KEY-1X"
    assert S3_SECRET not in repr(audit_rows(db))


def test_a_new_credential_is_sealed_and_named(
    db: Database, registry: Registry, settings: Settings
) -> None:
    target_id = s3_target(db, settings)
    update(
        db, registry, settings, target_id, name=None, patch={"secret_access_key": "a-new-secret"}
    )
    made = row(db, target_id)
    assert targets.full_config(settings, made)["secret_access_key"] == "a-new-secret"
    assert "a-new-secret" not in made.sealed
    assert "secret_access_key" in audit_rows(db)[-1][3]["changed"]
    assert "a-new-secret" not in repr(audit_rows(db))


def test_update_renames(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    target_id = local_target(db, settings, tmp_path / "one")
    recipient = row(db, target_id).recipient
    update(db, registry, settings, target_id, name="renamed", patch=None)
    made = row(db, target_id)
    assert (made.name, made.config, made.recipient) == (
        "renamed",
        {"path": str(tmp_path / "one")},
        recipient,  # the identity never changes
    )
    assert audit_rows(db)[-1] == (
        "ada",
        "storage_target.update",
        target_id,
        {"via": "token", "changed": ["name"]},
    )


@pytest.mark.parametrize(
    ("name", "patch", "error", "code"),
    [
        ("taken", None, Conflict, "duplicate"),
        ("Bad Name", None, InvalidInput, "invalid_slug"),
        (None, {"extra": 1}, InvalidInput, "invalid_config"),
    ],
)
def test_update_refusals_change_nothing(
    db: Database,
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
    name: str | None,
    patch: dict[str, Any] | None,
    error: type[MoorageError],
    code: str,
) -> None:
    target_id = local_target(db, settings, tmp_path / "one")
    local_target(db, settings, tmp_path / "two", name="taken")
    audited = audit_rows(db)
    with pytest.raises(error) as caught, db.session() as s:
        targets.update(s, ADA, registry, settings, target_id, name=name, config_patch=patch)
    assert caught.value.code == code
    made = row(db, target_id)
    assert (made.name, made.config) == ("disk", {"path": str(tmp_path / "one")})
    assert audit_rows(db) == audited


def test_delete_forgets_the_target_and_keeps_its_copies(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    target_id = local_target(db, settings, disk)
    (disk / "copy.age").write_bytes(b"a copy")
    with db.session() as s:
        targets.delete(s, ADA, target_id)
    assert count(db) == 0
    assert (disk / "copy.age").read_bytes() == b"a copy"
    assert (disk / targets.KEY_OBJECT).exists()
    assert audit_rows(db)[-1] == (
        "ada",
        "storage_target.delete",
        target_id,
        {"via": "token", "name": "disk", "kind": "local"},
    )


def test_missing_targets_are_not_found(
    db: Database, registry: Registry, settings: Settings
) -> None:
    with db.session() as s:
        for call in (
            lambda: targets.get(s, "st_missing"),
            lambda: targets.delete(s, ADA, "st_missing"),
            lambda: targets.probe(s, ADA, registry, settings, "st_missing"),
            lambda: targets.update(
                s, ADA, registry, settings, "st_missing", name="x", config_patch=None
            ),
        ):
            with pytest.raises(NotFound):
                call()
    assert audit_rows(db) == []


def test_a_probe_writes_reads_and_removes_its_object(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    target_id = local_target(db, settings, disk)
    with db.session() as s:
        result = targets.probe(s, ADA, registry, settings, target_id)
    assert result.ok and result.error is None
    assert [step["step"] for step in result.steps] == ["connect", "key", "write", "read", "delete"]
    assert sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*") if p.is_file()) == [
        targets.KEY_OBJECT
    ]
    made = row(db, target_id)
    assert made.last_test_at is not None and made.last_test_error is None
    assert audit_rows(db)[-1] == (
        "ada",
        "storage_target.test",
        target_id,
        {"via": "token", "ok": True},
    )


def test_a_failed_probe_is_a_result_kept_on_the_target(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    target_id = local_target(db, settings, disk)
    (disk / targets.KEY_OBJECT).unlink()
    with db.session() as s:
        result = targets.probe(s, ADA, registry, settings, target_id)
    assert not result.ok
    assert result.error is not None and result.error["code"] == "target_error"
    assert [step["step"] for step in result.steps] == ["connect"]
    made = row(db, target_id)
    assert made.last_test_at is not None
    assert made.last_test_error == result.error["message"]
    assert targets.KEY_OBJECT in made.last_test_error
    assert audit_rows(db)[-1][3] == {"via": "token", "ok": False, "error": "target_error"}


def test_the_audit_row_names_only_what_changed(
    db: Database, registry: Registry, settings: Settings
) -> None:
    target_id = s3_target(db, settings)
    update(
        db,
        registry,
        settings,
        target_id,
        name=None,
        patch={"region": "eu-central-1", "secret_access_key": S3_SECRET},
    )
    assert audit_rows(db)[-1][3] == {"via": "token", "changed": ["region"]}
    assert row(db, target_id).config["region"] == "eu-central-1"


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"bucket": "other"}, "target_moved"),
        ({"prefix": "elsewhere/", "secret_access_key": S3_SECRET}, "target_moved"),
        ({"region": "eu-central-1"}, "credentials_required"),
        ({"access_key_id": "AK2", "secret_access_key": MASK}, "credentials_required"),
    ],
)
def test_a_place_never_changes_and_credentials_follow_only_themselves(
    db: Database, registry: Registry, settings: Settings, patch: dict[str, Any], code: str
) -> None:
    target_id = s3_target(db, settings)
    before = row(db, target_id)
    with pytest.raises(InvalidInput) as caught:
        update(db, registry, settings, target_id, name=None, patch=patch)
    assert caught.value.code == code
    after = row(db, target_id)
    assert (after.config, after.sealed) == (before.config, before.sealed)
    assert audit_rows(db) == []


def test_a_local_targets_path_never_changes(
    db: Database, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    target_id = local_target(db, settings, tmp_path / "one")
    with pytest.raises(InvalidInput) as caught:
        update(db, registry, settings, target_id, name=None, patch={"path": str(tmp_path)})
    assert caught.value.code == "target_moved"
    assert row(db, target_id).config == {"path": str(tmp_path / "one")}
    assert audit_rows(db) == []


@pytest.mark.parametrize("where", ["var/copies", "var", "", "roots/a/copies"])
def test_a_local_target_sharing_the_data_dir_or_a_volume_root_is_refused(
    db: Database, registry: Registry, tmp_path: Path, where: str
) -> None:
    """Inside the data dir, the data dir itself, a directory holding it, or inside a
    volume root: a copy there dies with the disk it should outlive."""
    (tmp_path / "roots" / "a").mkdir(parents=True)
    settings = Settings(data_dir=tmp_path / "var", volume_roots=(tmp_path / "roots",))
    with pytest.raises(InvalidInput) as caught:
        create(db, registry, settings, tmp_path / where if where else tmp_path)
    assert caught.value.code == "invalid_config" and "another disk" in caught.value.message
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(StorageTarget)) == 0


def test_an_s3_endpoint_holding_a_user_or_password_is_refused(registry: Registry) -> None:
    kind = registry.storage_kind("s3")
    config = {
        "endpoint": "https://user:pw-9f3k@s3.example.org",
        "bucket": "bucket-b",
        "access_key_id": "a",
        "secret_access_key": "s",
    }
    with pytest.raises(InvalidInput) as caught:
        kind.validate(config)
    assert "endpoint" in caught.value.message and "pw-9f3k" not in caught.value.message
