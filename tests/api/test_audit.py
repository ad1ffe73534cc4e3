"""The audit log: one row per mutating action, with who did it; admin only."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server, assert_error, create_workload, unique


def audit_rows(server: Server, **params: Any) -> list[dict[str, Any]]:
    """Oldest first, for readable assertions (the API answers newest first)."""
    r = server.admin.get("/api/audit", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["items"]))


def summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(r["actor"], r["action"], r["target_type"], r["target_id"]) for r in rows]


def test_workload_lifecycle_writes_one_row_per_action(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    wid = workload["id"]
    url = f"/api/workloads/{wid}"
    other = create_workload(server, project)
    r = server.operator.post(
        "/api/triggers", json={"kind": "webhook", "name": unique("t"), "config": {}}
    )
    trigger_id = r.json()["id"]

    steps = [
        server.operator.patch(url, json={"name": unique("renamed")}),
        server.operator.put(f"{url}/env", json={"A": {"value": "1"}}),
        server.operator.put(
            f"{url}/volumes",
            json=[{"name": "d", "scope": "stage", "source": "d", "target": "/d"}],
        ),
        server.operator.put(f"{url}/chain", json={"next": [other["id"]]}),
        server.operator.post(f"{url}/triggers", json={"trigger_id": trigger_id}),
        server.operator.delete(f"{url}/triggers/{trigger_id}"),
        server.admin.delete(url),
    ]
    assert [s.status_code for s in steps] == [200, 200, 200, 200, 201, 204, 204]

    rows = audit_rows(server, target_type="workload", target_id=wid)
    assert summary(rows) == [
        ("olga", "workload.create", "workload", wid),
        ("olga", "workload.update", "workload", wid),
        ("olga", "workload.env.replace", "workload", wid),
        ("olga", "workload.volumes.replace", "workload", wid),
        ("olga", "workload.chain.replace", "workload", wid),
        ("olga", "workload.trigger.bind", "workload", wid),
        ("olga", "workload.trigger.unbind", "workload", wid),
        ("admin", "workload.delete", "workload", wid),
    ]
    assert all(r["details"]["via"] == "token" for r in rows)
    assert rows[0]["details"]["project"] == project
    assert rows[5]["details"]["trigger"] == trigger_id
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_project_actions_are_audited(server: Server) -> None:
    slug = unique("proj")
    assert server.admin.post("/api/projects", json={"slug": slug}).status_code == 201
    r = server.admin.patch(f"/api/projects/{slug}", json={"stages": ["prod"]})
    assert r.status_code == 200
    assert server.admin.delete(f"/api/projects/{slug}").status_code == 204
    rows = audit_rows(server, target_type="project", target_id=slug)
    assert summary(rows) == [
        ("admin", "project.create", "project", slug),
        ("admin", "project.update", "project", slug),
        ("admin", "project.delete", "project", slug),
    ]
    assert rows[1]["details"]["stages"] == ["prod"]


def test_trigger_actions_are_audited(server: Server) -> None:
    r = server.operator.post(
        "/api/triggers",
        json={"kind": "schedule", "name": unique("t"), "config": {"cron": "0 1 * * *"}},
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = server.operator.patch(f"/api/triggers/{tid}", json={"config": {"cron": "0 2 * * *"}})
    assert r.status_code == 200, r.text
    assert server.operator.delete(f"/api/triggers/{tid}").status_code == 204
    assert summary(audit_rows(server, target_type="trigger", target_id=tid)) == [
        ("olga", "trigger.create", "trigger", tid),
        ("olga", "trigger.update", "trigger", tid),
        ("olga", "trigger.delete", "trigger", tid),
    ]


def test_refused_actions_write_no_row(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    sibling = create_workload(server, project)
    wid = workload["id"]
    before = audit_rows(server, target_type="workload", target_id=wid)
    refused = [
        server.operator.patch(f"/api/workloads/{wid}", json={"config": {"image": None}}),
        server.operator.patch(f"/api/workloads/{wid}", json={"name": sibling["name"]}),
        server.operator.put(f"/api/workloads/{wid}/env", json={"1BAD": {"value": "x"}}),
        server.operator.put(f"/api/workloads/{wid}/chain", json={"next": [wid]}),
        server.operator.put(
            f"/api/workloads/{wid}/volumes",
            json=[{"name": "d", "scope": "stage", "source": "../x", "target": "/d"}],
        ),
        server.operator.delete(f"/api/workloads/{wid}"),
        server.viewer.patch(f"/api/workloads/{wid}", json={"name": unique("x")}),
    ]
    assert [r.status_code for r in refused] == [422, 409, 422, 422, 422, 403, 403]
    assert audit_rows(server, target_type="workload", target_id=wid) == before

    slug = unique("proj")
    assert server.operator.post("/api/projects", json={"slug": slug}).status_code == 403
    assert server.admin.post("/api/projects", json={"slug": "Bad Slug"}).status_code == 422
    assert audit_rows(server, target_type="project", target_id=slug) == []
    assert audit_rows(server, target_type="project", target_id="Bad Slug") == []


def test_newest_first_with_limit_and_before(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    wid = workload["id"]
    for i in range(3):
        r = server.operator.put(f"/api/workloads/{wid}/env", json={"N": {"value": str(i)}})
        assert r.status_code == 200, r.text
    r = server.admin.get(
        "/api/audit", params={"target_type": "workload", "target_id": wid, "limit": 2}
    )
    newest = r.json()["items"]
    assert [e["action"] for e in newest] == ["workload.env.replace"] * 2
    assert newest[0]["id"] > newest[1]["id"]
    r = server.admin.get(
        "/api/audit",
        params={"target_type": "workload", "target_id": wid, "before": newest[1]["id"]},
    )
    older = [e["action"] for e in r.json()["items"]]
    assert older == ["workload.env.replace", "workload.create"]


def test_only_admins_read_the_audit_log(server: Server) -> None:
    assert_error(server.viewer.get("/api/audit"), 403, "forbidden")
    assert_error(server.operator.get("/api/audit"), 403, "forbidden")
    assert_error(server.anonymous.get("/api/audit"), 401, "unauthenticated")
    assert server.admin.get("/api/audit").status_code == 200


def test_invalid_audit_queries(server: Server) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "many"}, {"before": 0}):
        assert_error(server.admin.get("/api/audit", params=params), 422, "invalid_request")
