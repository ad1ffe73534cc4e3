"""Chains (services/chain.py) on the real store: the next list is kept in order, the
graph stays acyclic (a refusal names the loop), and each refusal keeps the old list and
writes no audit row."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from moorage.errors import InvalidInput, NotFound
from moorage.plugins.registry import Registry
from moorage.services import chain
from moorage.store.db import Database
from moorage.store.tables import AuditEntry
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, audit_rows, make

# The store fixtures of test_workloads: SQLite, and PostgreSQL when asked.
db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop


@pytest.fixture
def ids(shop: Database, registry: Registry) -> dict[str, str]:
    """Workloads ``a`` to ``e``, by name, with no audit rows."""
    made = {name: make(shop, registry, name=name).id for name in "abcde"}
    with shop.session() as s:
        s.execute(delete(AuditEntry))
    return made


def replace(db: Database, workload_id: str, wanted: list[str]) -> list[str]:
    with db.session() as s:
        return chain.replace(s, ADA, workload_id, wanted)


def read(db: Database, workload_id: str) -> list[str]:
    with db.session() as s:
        return chain.read(s, workload_id)


def refused(db: Database, workload_id: str, wanted: list[str], code: str) -> InvalidInput:
    before, audited = read(db, workload_id), audit_rows(db)
    with pytest.raises(InvalidInput) as caught:
        replace(db, workload_id, wanted)
    assert caught.value.code == code
    assert read(db, workload_id) == before
    assert audit_rows(db) == audited
    return caught.value


def test_replace_keeps_the_order_and_writes_one_audit_row(
    shop: Database, ids: dict[str, str]
) -> None:
    wanted = [ids["c"], ids["b"], ids["d"]]
    assert replace(shop, ids["a"], wanted) == wanted
    assert read(shop, ids["a"]) == wanted
    assert audit_rows(shop) == [
        ("ada", "workload.chain.replace", ids["a"], {"via": "token", "next": wanted})
    ]
    assert replace(shop, ids["a"], [ids["d"]]) == [ids["d"]]
    assert read(shop, ids["a"]) == [ids["d"]]
    assert replace(shop, ids["a"], []) == []
    assert read(shop, ids["a"]) == []
    assert len(audit_rows(shop)) == 3


def test_a_diamond_is_no_cycle(shop: Database, ids: dict[str, str]) -> None:
    replace(shop, ids["a"], [ids["b"], ids["c"]])
    replace(shop, ids["b"], [ids["d"]])
    replace(shop, ids["c"], [ids["d"]])
    assert read(shop, ids["c"]) == [ids["d"]]


def test_chaining_to_itself_is_a_cycle(shop: Database, ids: dict[str, str]) -> None:
    refused(shop, ids["a"], [ids["b"], ids["a"]], "chain_cycle")


def test_a_loop_through_others_is_refused_and_named(shop: Database, ids: dict[str, str]) -> None:
    a, b, c = ids["a"], ids["b"], ids["c"]
    replace(shop, a, [b])
    replace(shop, b, [c])
    error = refused(shop, c, [ids["d"], a], "chain_cycle")
    assert error.details == {"cycle": [c, a, b, c]}
    assert f"{c} -> {a} -> {b} -> {c}" in error.message


def test_the_old_links_of_the_workload_do_not_count(shop: Database, ids: dict[str, str]) -> None:
    a, b = ids["a"], ids["b"]
    replace(shop, a, [b])
    refused(shop, b, [a], "chain_cycle")
    # once a no longer chains to b, b may chain to a; then a may not chain to b
    replace(shop, a, [ids["c"]])
    assert replace(shop, b, [a]) == [a]
    refused(shop, a, [ids["c"], b], "chain_cycle")


def test_a_workload_listed_twice_is_refused(shop: Database, ids: dict[str, str]) -> None:
    replace(shop, ids["a"], [ids["e"]])
    refused(shop, ids["a"], [ids["b"], ids["c"], ids["b"]], "invalid_chain")


def test_at_most_max_next(shop: Database, ids: dict[str, str]) -> None:
    too_many = [f"wl_{i:016x}" for i in range(chain.MAX_NEXT + 1)]
    error = refused(shop, ids["a"], too_many, "invalid_chain")
    assert str(chain.MAX_NEXT) in error.message


def test_an_unknown_workload_is_refused_by_name(shop: Database, ids: dict[str, str]) -> None:
    error = refused(shop, ids["a"], [ids["b"], "wl_missing", "wl_gone"], "unknown_workload")
    assert "wl_missing, wl_gone" in error.message


def test_a_missing_workload_is_not_found(shop: Database, ids: dict[str, str]) -> None:
    with pytest.raises(NotFound), shop.session() as s:
        chain.replace(s, ADA, "wl_missing", [ids["a"]])
    with pytest.raises(NotFound), shop.session() as s:
        chain.read(s, "wl_missing")
    assert audit_rows(shop) == []
