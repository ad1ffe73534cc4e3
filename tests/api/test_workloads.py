"""Workloads: create, list with filters, read, merge-patch, delete; names and ref_ids."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, free_port, unique

COMPOSE = "services:\n  web:\n    image: moorage-test/httpd:1\n"


def get_workload(server: Server, workload_id: str) -> dict[str, Any]:
    r = server.viewer.get(f"/api/workloads/{workload_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def listed_ids(server: Server, **params: str) -> set[str]:
    r = server.viewer.get("/api/workloads", params=params)
    assert r.status_code == 200, r.text
    return {w["id"] for w in r.json()["items"]}


def test_create_answers_the_workload(server: Server, project: str) -> None:
    name = unique("web")
    r = server.operator.post(
        "/api/workloads",
        json={
            "name": name,
            "kind": "image",
            "project": project,
            "stage": "staging",
            "config": {"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert {"id", "ref_id", "name", "kind", "project", "stage", "config", "status"} <= set(body)
    assert body["id"]
    assert body["ref_id"] == body["id"]
    assert body["name"] == name
    assert body["kind"] == "image"
    assert body["project"] == project
    assert body["stage"] == "staging"
    assert body["status"] == "never_deployed"  # SPEC section 9
    assert body["config"]["image"] == "moorage-test/httpd:1"
    assert body["config"]["ports"] == [{"container": 8080, "protocol": "tcp"}]
    assert get_workload(server, body["id"]) == body


def test_create_compose_workload(server: Server, project: str) -> None:
    body = create_workload(server, project, kind="compose", config={"compose": COMPOSE})
    assert body["kind"] == "compose"
    assert body["config"] == {"compose": COMPOSE}
    assert get_workload(server, body["id"])["config"] == {"compose": COMPOSE}


def test_get_unknown_workload_is_404(server: Server) -> None:
    assert_error(server.viewer.get("/api/workloads/wl_doesnotexist"), 404, "not_found")


def test_list_filters_by_project_stage_and_kind(server: Server) -> None:
    p = unique("p")
    q = unique("p")
    for slug in (p, q):
        assert server.admin.post("/api/projects", json={"slug": slug}).status_code == 201
    a = create_workload(server, p, stage="production")["id"]
    b = create_workload(server, p, stage="staging")["id"]
    c = create_workload(server, p, stage="staging", kind="compose", config={"compose": COMPOSE})[
        "id"
    ]
    d = create_workload(server, q, stage="staging")["id"]

    assert listed_ids(server, project=p) == {a, b, c}
    assert listed_ids(server, project=q) == {d}
    assert listed_ids(server, project=p, stage="staging") == {b, c}
    assert listed_ids(server, project=p, stage="production") == {a}
    assert listed_ids(server, project=p, kind="compose") == {c}
    assert listed_ids(server, project=p, kind="image") == {a, b}
    assert listed_ids(server, project=p, stage="staging", kind="image") == {b}
    assert listed_ids(server, project=p, stage="development") == set()
    assert listed_ids(server, project=unique("nobody")) == set()

    across = server.viewer.get("/api/workloads", params={"stage": "staging", "kind": "image"})
    items = across.json()["items"]
    assert {b, d} <= {w["id"] for w in items}
    assert not {a, c} & {w["id"] for w in items}
    assert all(w["stage"] == "staging" and w["kind"] == "image" for w in items)

    everything = listed_ids(server)
    assert {a, b, c, d} <= everything


def test_list_items_carry_the_project_slug(server: Server, project: str) -> None:
    created = create_workload(server, project)
    items = server.viewer.get("/api/workloads", params={"project": project}).json()["items"]
    assert items == [get_workload(server, created["id"])]


def test_patch_name(server: Server, workload: dict[str, Any]) -> None:
    new = unique("renamed")
    r = server.operator.patch(f"/api/workloads/{workload['id']}", json={"name": new})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == new
    after = get_workload(server, workload["id"])
    assert after["name"] == new
    assert after["config"] == workload["config"]
    assert after["ref_id"] == workload["ref_id"]


def test_patch_config_is_a_json_merge_patch(server: Server, project: str) -> None:
    created = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "command": ["httpd", "-f"],
            "ports": [{"container": 8080, "host": 18080}],
            "stop_timeout": 5,
        },
    )
    url = f"/api/workloads/{created['id']}"
    r = server.operator.patch(url, json={"config": {"command": None, "stop_timeout": 30}})
    assert r.status_code == 200, r.text
    config = get_workload(server, created["id"])["config"]
    assert "command" not in config
    assert config["stop_timeout"] == 30
    assert config["image"] == "moorage-test/httpd:1"
    assert config["ports"] == [{"container": 8080, "host": 18080, "protocol": "tcp"}]

    # Arrays are replaced whole; nested objects merge.
    r = server.operator.patch(url, json={"config": {"ports": [{"container": 9000}]}})
    assert r.status_code == 200, r.text
    r = server.operator.patch(url, json={"config": {"health": {"http": "/up"}}})
    assert r.status_code == 200, r.text
    r = server.operator.patch(url, json={"config": {"health": {"port": 9000}}})
    assert r.status_code == 200, r.text
    config = get_workload(server, created["id"])["config"]
    assert config["ports"] == [{"container": 9000, "protocol": "tcp"}]
    assert config["health"]["http"] == "/up"
    assert config["health"]["port"] == 9000
    assert config["stop_timeout"] == 30


def test_patch_with_empty_body_changes_nothing(server: Server, workload: dict[str, Any]) -> None:
    r = server.operator.patch(f"/api/workloads/{workload['id']}", json={})
    assert r.status_code == 200, r.text
    after = get_workload(server, workload["id"])
    assert {k: after[k] for k in ("name", "ref_id", "config")} == {
        k: workload[k] for k in ("name", "ref_id", "config")
    }


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"config": {"image": None}}, "invalid_config"),
        ({"config": {"image": "Not A Valid Ref"}}, "invalid_config"),
        ({"config": {"ports": [{"container": 70000}]}}, "invalid_config"),
        ({"config": {"surprise": True}}, "invalid_config"),
        ({"config": "a string"}, "invalid_request"),
        ({"name": "Bad Name"}, "invalid_slug"),
        ({"name": "ok", "config": {"image": None}}, "invalid_config"),
        ({"ref_id": "-starts-with-dash"}, "invalid_ref_id"),
        ({"kind": "compose"}, "invalid_request"),
    ],
)
def test_invalid_patch_changes_nothing(
    server: Server, workload: dict[str, Any], patch: dict[str, Any], code: str
) -> None:
    before = get_workload(server, workload["id"])
    r = server.operator.patch(f"/api/workloads/{workload['id']}", json=patch)
    assert_error(r, 422, code)
    assert get_workload(server, workload["id"]) == before


def test_patch_unknown_workload_is_404(server: Server) -> None:
    r = server.operator.patch("/api/workloads/wl_doesnotexist", json={"name": "x"})
    assert_error(r, 404, "not_found")


def test_rename_onto_a_sibling_is_409(server: Server, project: str) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project)
    before = get_workload(server, second["id"])
    r = server.operator.patch(f"/api/workloads/{second['id']}", json={"name": first["name"]})
    assert_error(r, 409, "duplicate")
    assert get_workload(server, second["id"]) == before
    assert get_workload(server, first["id"])["name"] == first["name"]


def test_patch_ref_id_onto_another_workloads_is_409(server: Server, project: str) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project)
    before = get_workload(server, second["id"])
    r = server.operator.patch(f"/api/workloads/{second['id']}", json={"ref_id": first["ref_id"]})
    assert_error(r, 409, "duplicate")
    assert get_workload(server, second["id"]) == before


def test_patch_ref_id(server: Server, workload: dict[str, Any]) -> None:
    ref = unique("ref")
    r = server.operator.patch(f"/api/workloads/{workload['id']}", json={"ref_id": ref})
    assert r.status_code == 200, r.text
    assert get_workload(server, workload["id"])["ref_id"] == ref


def test_admin_deletes_a_workload(server: Server, project: str) -> None:
    created = create_workload(server, project)
    keep = create_workload(server, project)
    r = server.admin.delete(f"/api/workloads/{created['id']}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(server.viewer.get(f"/api/workloads/{created['id']}"), 404, "not_found")
    assert listed_ids(server, project=project) == {keep["id"]}
    assert_error(server.admin.delete(f"/api/workloads/{created['id']}"), 404, "not_found")


def test_operator_cannot_delete_a_workload(server: Server, workload: dict[str, Any]) -> None:
    before = get_workload(server, workload["id"])
    assert_error(server.operator.delete(f"/api/workloads/{workload['id']}"), 403, "forbidden")
    assert get_workload(server, workload["id"]) == before


def test_a_deleted_name_can_be_reused(server: Server, project: str) -> None:
    created = create_workload(server, project)
    assert server.admin.delete(f"/api/workloads/{created['id']}").status_code == 204
    again = create_workload(server, project, name=created["name"])
    assert again["id"] != created["id"]


# --- create errors -----------------------------------------------------------


def _body(project: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": unique("w"),
        "kind": "image",
        "project": project,
        "stage": "production",
        "config": {"image": "moorage-test/httpd:1"},
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"name": "Capital"}, "invalid_slug"),
        ({"name": "has space"}, "invalid_slug"),
        ({"name": ""}, "invalid_slug"),
        ({"name": "x" * 64}, "invalid_request"),
        ({"kind": "helm"}, "unknown_kind"),
        ({"stage": "qa"}, "unknown_stage"),
        ({"config": {}}, "invalid_config"),
        ({"config": {"image": "UpperCase:1"}}, "invalid_config"),
        ({"config": {"image": "web:bad tag"}}, "invalid_config"),
        ({"config": {"image": "a/b:1", "unknown": 1}}, "invalid_config"),
        ({"config": {"image": "a/b:1", "ports": [{"container": 0}]}}, "invalid_config"),
        (
            {"config": {"image": "a/b:1", "ports": [{"container": 80}, {"container": 80}]}},
            "invalid_config",
        ),
        (
            {"config": {"image": "a/b:1", "health": {"http": "/", "cmd": ["true"]}}},
            "invalid_config",
        ),
        ({"config": {"image": "a/b:1", "stop_timeout": 601}}, "invalid_config"),
        ({"kind": "compose", "config": {"compose": "services: [\n"}}, "invalid_config"),
        ({"kind": "compose", "config": {"compose": "services: {}\n"}}, "invalid_config"),
        ({"kind": "compose", "config": {"compose": "services:\n  a: {}\n"}}, "invalid_config"),
        ({"config": "not an object"}, "invalid_request"),
        ({"ref_id": "-dash"}, "invalid_ref_id"),
        ({"ref_id": "has space"}, "invalid_ref_id"),
        ({"status": "running"}, "invalid_request"),
    ],
)
def test_invalid_create_creates_nothing(
    server: Server, project: str, overrides: dict[str, Any], code: str
) -> None:
    body = _body(project, **overrides)
    r = server.operator.post("/api/workloads", json=body)
    assert_error(r, 422, code)
    assert listed_ids(server, project=project) == set()


def test_unknown_project_is_422(server: Server) -> None:
    slug = unique("nobody")
    r = server.operator.post("/api/workloads", json=_body(slug))
    assert_error(r, 422, "unknown_project")
    assert listed_ids(server, project=slug) == set()
    assert_error(server.viewer.get(f"/api/projects/{slug}"), 404, "not_found")


def test_invalid_config_names_the_field(server: Server, project: str) -> None:
    body = _body(project, config={"image": "a/b:1", "stop_timeout": -1})
    error = assert_error(server.operator.post("/api/workloads", json=body), 422, "invalid_config")
    assert [d["field"] for d in error["details"]] == ["stop_timeout"]


def test_an_http_health_check_needs_a_published_tcp_port(server: Server, project: str) -> None:
    """Create and PATCH refuse what the deploy's probe can never reach (issue 12): 422
    naming ``health``, nothing created or changed; the unit test covers each form."""
    bad = {"image": "moorage-test/httpd:1", "health": {"http": "/"}}
    error = assert_error(
        server.operator.post("/api/workloads", json=_body(project, config=bad)),
        422,
        "invalid_config",
    )
    assert [d["field"] for d in error["details"]] == ["health"]
    assert listed_ids(server, project=project) == set()
    created = create_workload(server, project, config={**bad, "ports": [{"container": 8080}]})
    url = f"/api/workloads/{created['id']}"
    for patch in (
        {"ports": []},
        {"ports": [{"container": 8080, "protocol": "udp"}]},
        {"health": {"port": 9000}},
    ):
        error = assert_error(server.operator.patch(url, json={"config": patch}), 422)
        assert error["code"] == "invalid_config" and "health" in error["message"], patch
        assert [d["field"] for d in error["details"]] == ["health"]
    assert get_workload(server, created["id"]) == created


def test_viewer_cannot_create(server: Server, project: str) -> None:
    r = server.viewer.post("/api/workloads", json=_body(project))
    assert_error(r, 403, "forbidden")
    assert listed_ids(server, project=project) == set()


def test_registry_password_is_masked(server: Server, project: str) -> None:
    password = "registry-password-" + unique("x")
    created = create_workload(
        server,
        project,
        config={
            "image": "registry.example.com/team/web:1",
            "registry_auth": {"username": "bot", "password": password},
        },
    )
    assert password not in str(created)
    assert created["config"]["registry_auth"]["password"] == "**********"
    r = server.viewer.get(f"/api/workloads/{created['id']}")
    assert password not in r.text
    r = server.viewer.get("/api/workloads", params={"project": project})
    assert password not in r.text
    # Echoing the masked config back keeps the stored password (it stays set).
    r = server.operator.patch(f"/api/workloads/{created['id']}", json={"config": created["config"]})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["registry_auth"] == {
        "username": "bot",
        "password": "**********",
        "server": "registry.example.com",  # bound to the image's registry host when saved
    }


# --- ref_id and names ---------------------------------------------------------


def test_ref_id_defaults_to_own_id_so_siblings_coexist(server: Server, project: str) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project, ref_id="")
    assert first["ref_id"] == first["id"]
    assert second["ref_id"] == second["id"]
    assert first["ref_id"] != second["ref_id"]
    assert listed_ids(server, project=project) == {first["id"], second["id"]}


def test_explicit_duplicate_ref_id_of_same_kind_is_409(server: Server, project: str) -> None:
    ref = unique("ref")
    first = create_workload(server, project, ref_id=ref)
    assert first["ref_id"] == ref
    r = server.operator.post("/api/workloads", json=_body(project, ref_id=ref, stage="staging"))
    assert_error(r, 409, "duplicate")
    assert listed_ids(server, project=project) == {first["id"]}


def test_same_ref_id_with_another_kind_is_fine(server: Server, project: str) -> None:
    ref = unique("ref")
    image = create_workload(server, project, ref_id=ref)
    compose = create_workload(
        server, project, ref_id=ref, kind="compose", config={"compose": COMPOSE}
    )
    assert image["ref_id"] == compose["ref_id"] == ref
    assert listed_ids(server, project=project) == {image["id"], compose["id"]}


def test_ref_id_is_unique_across_projects(server: Server, project: str) -> None:
    other = unique("p")
    assert server.admin.post("/api/projects", json={"slug": other}).status_code == 201
    ref = unique("ref")
    create_workload(server, project, ref_id=ref)
    r = server.operator.post("/api/workloads", json=_body(other, ref_id=ref))
    assert_error(r, 409, "duplicate")
    assert listed_ids(server, project=other) == set()


def test_duplicate_name_in_same_stage_is_409(server: Server, project: str) -> None:
    first = create_workload(server, project, stage="staging")
    r = server.operator.post(
        "/api/workloads", json=_body(project, name=first["name"], stage="staging")
    )
    assert_error(r, 409, "duplicate")
    assert listed_ids(server, project=project) == {first["id"]}
    assert get_workload(server, first["id"]) == first


def test_same_name_in_another_stage_or_project_is_fine(server: Server, project: str) -> None:
    other = unique("p")
    assert server.admin.post("/api/projects", json={"slug": other}).status_code == 201
    name = unique("api")
    staging = create_workload(server, project, name=name, stage="staging")
    production = create_workload(server, project, name=name, stage="production")
    elsewhere = create_workload(server, other, name=name, stage="staging")
    assert len({staging["id"], production["id"], elsewhere["id"]}) == 3
    assert listed_ids(server, project=project) == {staging["id"], production["id"]}
    assert listed_ids(server, project=other) == {elsewhere["id"]}


HOST_POWER_FILES = {
    "privileged": "services:\n  web:\n    image: x\n    privileged: true\n",
    "bind mount": "services:\n  web:\n    image: x\n    volumes:\n      - /:/host\n",
    "socket": "services:\n  web:\n    image: x\n    volumes:\n"
    "      - type: bind\n        source: /var/run/docker.sock\n        target: /s\n",
    "host network": "services:\n  web:\n    image: x\n    network_mode: host\n",
    "host pid": "services:\n  web:\n    image: x\n    pid: host\n",
}


@pytest.mark.parametrize("text", HOST_POWER_FILES.values(), ids=HOST_POWER_FILES.keys())
def test_compose_with_host_powers_needs_an_admin(server: Server, project: str, text: str) -> None:
    before = server.viewer.get("/api/workloads", params={"project": project}).json()
    body = {
        "name": unique("c"),
        "kind": "compose",
        "project": project,
        "stage": "production",
        "config": {"compose": text},
    }
    assert_error(server.operator.post("/api/workloads", json=body), 403, "needs_admin")
    assert server.viewer.get("/api/workloads", params={"project": project}).json() == before
    r = server.admin.post("/api/workloads", json=body)
    assert r.status_code == 201, r.text
    # And an operator cannot sneak it in by PATCH either.
    safe = {**body, "name": unique("c"), "config": {"compose": "services:\n  web:\n    image: x\n"}}
    created = server.operator.post("/api/workloads", json=safe)
    assert created.status_code == 201, created.text
    r = server.operator.patch(
        f"/api/workloads/{created.json()['id']}", json={"config": {"compose": text}}
    )
    assert_error(r, 403, "needs_admin")
    shown = server.viewer.get(f"/api/workloads/{created.json()['id']}").json()
    assert shown["config"] == safe["config"]


def test_compose_volumes_name_their_service(server: Server, project: str) -> None:
    """A compose workload's Moorage volume names the service it binds into (SPEC 10);
    without one it is refused and nothing is saved (tests/integration/test_stacks.py has
    the rest)."""
    body = {
        "name": unique("c"),
        "kind": "compose",
        "project": project,
        "stage": "production",
        "config": {"compose": "services:\n  web:\n    image: x\n"},
    }
    wid = server.operator.post("/api/workloads", json=body).json()["id"]
    volume = {"name": "d", "scope": "stage", "source": unique("d"), "target": "/d"}
    r = server.operator.put(f"/api/workloads/{wid}/volumes", json=[volume])
    assert_error(r, 422, "unknown_service")
    empty = {"items": [], "not_covered": []}
    assert server.operator.get(f"/api/workloads/{wid}/volumes").json() == empty
    r = server.operator.put(f"/api/workloads/{wid}/volumes", json=[{**volume, "service": "web"}])
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["service"] == "web"


# --- fixed host ports (issue 13) ---------------------------------------------------------


def with_port(port: int, protocol: str = "tcp") -> dict[str, Any]:
    return {
        "image": "moorage-test/httpd:1",
        "ports": [{"container": 8080, "host": port, "protocol": protocol}],
    }


def test_a_host_port_another_workload_publishes_is_409_at_create_and_patch(
    server: Server, project: str
) -> None:
    port = free_port()
    first = create_workload(server, project, config=with_port(port))
    wanted = {"name": unique("w"), "kind": "image", "project": project, "stage": "staging"}
    error = assert_error(
        server.operator.post("/api/workloads", json={**wanted, "config": with_port(port)}),
        409,
        "port_in_use",
    )
    assert first["name"] in error["message"] and first["id"] in error["message"]
    assert error["details"] == [
        {
            "field": "config.ports",
            "port": port,
            "workload": first["id"],
            "workload_name": first["name"],
        }
    ]
    assert listed_ids(server, project=project) == {first["id"]}

    other = create_workload(server, project, config={"image": "moorage-test/httpd:1"})
    before = get_workload(server, other["id"])
    r = server.operator.patch(f"/api/workloads/{other['id']}", json={"config": with_port(port)})
    assert_error(r, 409, "port_in_use")
    assert get_workload(server, other["id"]) == before

    # The same number over udp is another port; a workload keeps its own port on a PATCH.
    udp = with_port(port, "udp")
    r = server.operator.patch(f"/api/workloads/{other['id']}", json={"config": udp})
    assert r.status_code == 200, r.text
    r = server.operator.patch(f"/api/workloads/{first['id']}", json={"config": {"stop_timeout": 5}})
    assert r.status_code == 200, r.text

    # Ports are the host's: another project is refused too, and a deleted workload frees it.
    elsewhere = unique("p")
    assert server.admin.post("/api/projects", json={"slug": elsewhere}).status_code == 201
    body = {**wanted, "project": elsewhere, "stage": "production", "config": with_port(port)}
    assert_error(server.operator.post("/api/workloads", json=body), 409, "port_in_use")
    assert server.admin.delete(f"/api/workloads/{first['id']}").status_code == 204
    assert server.operator.post("/api/workloads", json=body).status_code == 201
