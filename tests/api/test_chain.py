"""Chains: workloads deployed after one succeeds; the graph must stay acyclic."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload


def chain_url(workload_id: str) -> str:
    return f"/api/workloads/{workload_id}/chain"


def read_chain(server: Server, workload_id: str) -> list[str]:
    r = server.operator.get(chain_url(workload_id))
    assert r.status_code == 200, r.text
    return list(r.json()["next"])


def set_chain(server: Server, workload_id: str, nxt: list[str]) -> None:
    r = server.operator.put(chain_url(workload_id), json={"next": nxt})
    assert r.status_code == 200, r.text
    assert r.json() == {"next": nxt}


@pytest.fixture
def trio(server: Server, project: str) -> list[str]:
    return [create_workload(server, project)["id"] for _ in range(3)]


def test_a_new_workload_has_an_empty_chain(server: Server, workload: dict[str, Any]) -> None:
    assert read_chain(server, workload["id"]) == []


def test_put_and_get_keep_the_order(server: Server, trio: list[str]) -> None:
    a, b, c = trio
    set_chain(server, a, [c, b])
    assert read_chain(server, a) == [c, b]
    set_chain(server, a, [b])
    assert read_chain(server, a) == [b]
    set_chain(server, a, [])
    assert read_chain(server, a) == []


def test_chain_across_stages_is_allowed(server: Server, workload: dict[str, Any]) -> None:
    other = create_workload(server, workload["project"], stage="staging")
    set_chain(server, other["id"], [workload["id"]])
    assert read_chain(server, other["id"]) == [workload["id"]]


def test_a_diamond_is_not_a_cycle(server: Server, project: str) -> None:
    a, b, c, d = (create_workload(server, project)["id"] for _ in range(4))
    set_chain(server, a, [b, c])
    set_chain(server, b, [d])
    set_chain(server, c, [d])
    set_chain(server, a, [b, c, d])
    assert read_chain(server, a) == [b, c, d]


def test_self_chain_is_a_cycle(server: Server, trio: list[str]) -> None:
    a, b, _ = trio
    set_chain(server, a, [b])
    r = server.operator.put(chain_url(a), json={"next": [b, a]})
    assert_error(r, 422, "chain_cycle")
    assert read_chain(server, a) == [b]


def test_two_cycle(server: Server, trio: list[str]) -> None:
    a, b, _ = trio
    set_chain(server, a, [b])
    error = assert_error(server.operator.put(chain_url(b), json={"next": [a]}), 422, "chain_cycle")
    assert error["details"]["cycle"] == [b, a, b]
    assert read_chain(server, a) == [b]
    assert read_chain(server, b) == []


def test_three_cycle(server: Server, trio: list[str]) -> None:
    a, b, c = trio
    set_chain(server, a, [b])
    set_chain(server, b, [c])
    error = assert_error(server.operator.put(chain_url(c), json={"next": [a]}), 422, "chain_cycle")
    assert error["details"]["cycle"] == [c, a, b, c]
    assert (read_chain(server, a), read_chain(server, b), read_chain(server, c)) == (
        [b],
        [c],
        [],
    )


def test_replacing_a_chain_can_close_a_cycle_through_old_edges(
    server: Server, project: str
) -> None:
    a, b, c, d = (create_workload(server, project)["id"] for _ in range(4))
    set_chain(server, a, [b])
    set_chain(server, b, [c])
    set_chain(server, c, [d])
    r = server.operator.put(chain_url(d), json={"next": [a]})
    assert_error(r, 422, "chain_cycle")
    assert read_chain(server, d) == []
    # Breaking the loop first makes the same edge legal.
    set_chain(server, b, [])
    set_chain(server, d, [a])
    assert read_chain(server, d) == [a]


def test_unknown_ids_are_422(server: Server, trio: list[str]) -> None:
    a, b, _ = trio
    set_chain(server, a, [b])
    r = server.operator.put(chain_url(a), json={"next": [b, "wl_doesnotexist"]})
    error = assert_error(r, 422, "unknown_workload")
    assert "wl_doesnotexist" in error["message"]
    assert read_chain(server, a) == [b]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"next": "not-a-list"}, "invalid_request"),
        ({"next": [1]}, "invalid_request"),
        ({}, "invalid_request"),
        ({"next": [], "extra": True}, "invalid_request"),
    ],
)
def test_malformed_chain_bodies(
    server: Server, trio: list[str], body: dict[str, Any], code: str
) -> None:
    a, b, _ = trio
    set_chain(server, a, [b])
    assert_error(server.operator.put(chain_url(a), json=body), 422, code)
    assert read_chain(server, a) == [b]


def test_listing_a_workload_twice_is_422(server: Server, trio: list[str]) -> None:
    a, b, _ = trio
    assert_error(server.operator.put(chain_url(a), json={"next": [b, b]}), 422, "invalid_chain")
    assert read_chain(server, a) == []


def test_chain_of_unknown_workload_is_404(server: Server) -> None:
    assert_error(server.operator.get(chain_url("wl_nope")), 404, "not_found")
    assert_error(server.operator.put(chain_url("wl_nope"), json={"next": []}), 404, "not_found")


def test_deleting_a_workload_drops_it_from_chains(server: Server, trio: list[str]) -> None:
    a, b, c = trio
    set_chain(server, a, [b, c])
    set_chain(server, b, [c])
    assert server.admin.delete(f"/api/workloads/{b}").status_code == 204
    assert read_chain(server, a) == [c]


def test_viewer_cannot_change_a_chain(server: Server, trio: list[str]) -> None:
    a, b, _ = trio
    assert_error(server.viewer.put(chain_url(a), json={"next": [b]}), 403, "forbidden")
    assert read_chain(server, a) == []
