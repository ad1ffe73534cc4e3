"""A workload's env (services/env.py) on the real store: secrets never come back through a
read nor into an audit row, a null keeps only a stored secret, each refusal keeps the old
set and writes no audit row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select

from moorage.errors import InvalidInput, NotFound
from moorage.plugins.registry import Registry
from moorage.services import env
from moorage.store.db import Database
from moorage.store.tables import AuditEntry, EnvVar
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, SETTINGS, audit_rows, make

# The store fixtures of test_workloads: SQLite, and PostgreSQL when asked.
db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop

SECRET = "s3cr3t-value-never-shown"


@pytest.fixture
def web(shop: Database, registry: Registry) -> str:
    """An image workload's id, with PLAIN=1 and TOKEN (secret) set, and no audit rows."""
    workload_id = make(shop, registry).id
    replace(shop, registry, workload_id, {"PLAIN": plain("1"), "TOKEN": secret(SECRET)})
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    return workload_id


def plain(value: str | None) -> dict[str, Any]:
    return {"value": value, "secret": False}


def secret(value: str | None) -> dict[str, Any]:
    return {"value": value, "secret": True}


def replace(
    db: Database, registry: Registry, workload_id: str, wanted: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    with db.session() as s:
        return env.replace(s, ADA, registry, SETTINGS, workload_id, wanted)


def stored(db: Database, workload_id: str) -> dict[str, tuple[str, bool]]:
    with db.session() as s:
        return {r.key: (r.value, r.secret) for r in env.rows(s, workload_id)}


def refused(db: Database, registry: Registry, workload_id: str, wanted: dict[str, Any]) -> str:
    """Replacing with ``wanted`` is refused 422 ``invalid_env`` and changes nothing."""
    before = stored(db, workload_id)
    with pytest.raises(InvalidInput) as caught:
        replace(db, registry, workload_id, wanted)
    assert caught.value.code == "invalid_env"
    assert stored(db, workload_id) == before
    assert audit_rows(db) == []
    return caught.value.message


def test_replace_stores_the_set_and_reads_secrets_masked(
    shop: Database, registry: Registry, web: str
) -> None:
    assert stored(shop, web) == {"PLAIN": ("1", False), "TOKEN": (SECRET, True)}
    answer = replace(shop, registry, web, {"B": plain("two"), "A": secret("x"), "PLAIN": plain("")})
    assert answer == {
        "A": {"value": None, "secret": True},
        "B": {"value": "two", "secret": False},
        "PLAIN": {"value": "", "secret": False},
    }
    assert list(answer) == ["A", "B", "PLAIN"]  # sorted by key
    assert stored(shop, web) == {"A": ("x", True), "B": ("two", False), "PLAIN": ("", False)}
    assert audit_rows(shop) == [
        ("ada", "workload.env.replace", web, {"via": "token", "keys": ["A", "B", "PLAIN"]})
    ]
    with shop.session() as s:
        assert env.read(s, web) == answer


def test_a_null_keeps_a_stored_secret(shop: Database, registry: Registry, web: str) -> None:
    answer = replace(shop, registry, web, {"TOKEN": secret(None)})
    assert answer == {"TOKEN": {"value": None, "secret": True}}
    assert stored(shop, web) == {"TOKEN": (SECRET, True)}
    assert all(SECRET not in repr(row) for row in audit_rows(shop))


@pytest.mark.parametrize(
    "wanted",
    [
        {"PLAIN": plain(None)},  # a plain variable has no value to keep
        {"PLAIN": secret(None)},  # nor has it when it turns secret
        {"NEW": secret(None)},  # nor a new one
        {"TOKEN": plain(None)},  # a kept secret may not turn plain (it would show)
    ],
    ids=["plain-null", "plain-to-secret-null", "new-null", "secret-to-plain-null"],
)
def test_a_null_is_refused_unless_it_keeps_a_secret(
    shop: Database, registry: Registry, web: str, wanted: dict[str, Any]
) -> None:
    refused(shop, registry, web, wanted)


def test_a_secret_turns_plain_only_with_its_value(
    shop: Database, registry: Registry, web: str
) -> None:
    answer = replace(shop, registry, web, {"TOKEN": plain("shown")})
    assert answer == {"TOKEN": {"value": "shown", "secret": False}}


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A.B", "É", "A" * 256, "A\n", "A=B"])
def test_a_bad_key_is_refused(shop: Database, registry: Registry, web: str, key: str) -> None:
    refused(shop, registry, web, {key: plain("v")})


@pytest.mark.parametrize("key", ["_", "a", "_9", "lower_and_UPPER", "A" * 255])
def test_keys_at_the_limits_are_kept(
    shop: Database, registry: Registry, web: str, key: str
) -> None:
    assert replace(shop, registry, web, {key: plain("v")}) == {key: plain("v")}


@pytest.mark.parametrize(
    "value",
    ["x" * (env.MAX_VALUE_BYTES + 1), "é" * (env.MAX_VALUE_BYTES // 2 + 1), "a\x00b", "\ud800"],
    ids=["one-byte-over", "two-byte-chars-over", "nul", "lone-surrogate"],
)
def test_a_bad_value_is_refused(shop: Database, registry: Registry, web: str, value: str) -> None:
    message = refused(shop, registry, web, {"K": plain(value)})
    assert "'K'" in message


def test_a_value_at_the_byte_limit_is_kept(shop: Database, registry: Registry, web: str) -> None:
    value = "é" * (env.MAX_VALUE_BYTES // 2)
    replace(shop, registry, web, {"K": secret(value)})
    assert stored(shop, web) == {"K": (value, True)}


def test_at_most_max_vars(shop: Database, registry: Registry, web: str) -> None:
    many = {f"V{i}": plain("x") for i in range(env.MAX_VARS + 1)}
    refused(shop, registry, web, many)
    many.pop(f"V{env.MAX_VARS}")
    assert len(replace(shop, registry, web, many)) == env.MAX_VARS


def test_one_bad_entry_refuses_the_whole_set(shop: Database, registry: Registry, web: str) -> None:
    refused(shop, registry, web, {"GOOD": plain("1"), "bad-key": plain("2")})


def test_a_missing_workload_is_not_found(shop: Database, registry: Registry) -> None:
    with pytest.raises(NotFound), shop.session() as s:
        env.replace(s, ADA, registry, SETTINGS, "wl_missing", {"A": plain("1")})
    with pytest.raises(NotFound), shop.session() as s:
        env.read(s, "wl_missing")
    with shop.session() as s:
        assert s.scalars(select(EnvVar)).all() == []
    assert audit_rows(shop) == []


def test_revealing_a_secret_is_audited_by_key_only(shop: Database, web: str) -> None:
    with shop.session() as s:
        assert env.reveal(s, ADA, web, "TOKEN").value == SECRET
    assert audit_rows(shop) == [("ada", "env.reveal", web, {"via": "token", "key": "TOKEN"})]


def test_revealing_a_plain_variable_is_not_audited(shop: Database, web: str) -> None:
    with shop.session() as s:
        assert env.reveal(s, ADA, web, "PLAIN").value == "1"
    assert audit_rows(shop) == []


def test_revealing_a_missing_key_or_workload_is_not_found(shop: Database, web: str) -> None:
    with shop.session() as s:
        with pytest.raises(NotFound):
            env.reveal(s, ADA, web, "NOPE")
        with pytest.raises(NotFound):
            env.reveal(s, ADA, "wl_missing", "TOKEN")
        with pytest.raises(NotFound):
            env.reveal(s, ADA, web, "token")  # keys are case-sensitive
    assert audit_rows(shop) == []
