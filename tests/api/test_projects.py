"""Projects and their stages, against the real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, unique

DEFAULT_STAGES = ["development", "staging", "production"]


def project_slugs(server: Server) -> set[str]:
    r = server.viewer.get("/api/projects")
    assert r.status_code == 200, r.text
    return {p["slug"] for p in r.json()["items"]}


def get_project(server: Server, slug: str) -> dict[str, Any]:
    r = server.viewer.get(f"/api/projects/{slug}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_create_project_gets_default_stages(server: Server) -> None:
    slug = unique("proj")
    r = server.admin.post("/api/projects", json={"slug": slug})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["slug"] == slug
    assert body["stages"] == DEFAULT_STAGES
    assert body["description"] == ""
    assert body["id"]
    assert get_project(server, slug) == body


def test_create_project_with_custom_stages_and_description(server: Server) -> None:
    slug = unique("proj")
    r = server.admin.post(
        "/api/projects", json={"slug": slug, "stages": ["qa", "live"], "description": "shop"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["stages"] == ["qa", "live"]
    assert r.json()["description"] == "shop"
    assert get_project(server, slug)["stages"] == ["qa", "live"]


def test_list_projects_shows_the_created_ones(server: Server) -> None:
    first, second = unique("proj"), unique("proj")
    ids = {}
    for slug in (first, second):
        r = server.admin.post("/api/projects", json={"slug": slug})
        assert r.status_code == 201, r.text
        ids[slug] = r.json()["id"]
    items = server.viewer.get("/api/projects").json()["items"]
    listed = {p["slug"]: p["id"] for p in items}
    assert listed[first] == ids[first]
    assert listed[second] == ids[second]
    slugs = [p["slug"] for p in items]
    assert slugs == sorted(slugs)


def test_duplicate_slug_is_409_and_keeps_the_first(server: Server) -> None:
    slug = unique("proj")
    r = server.admin.post("/api/projects", json={"slug": slug, "stages": ["one"]})
    assert r.status_code == 201, r.text
    before = get_project(server, slug)
    r = server.admin.post("/api/projects", json={"slug": slug, "stages": ["two"]})
    assert_error(r, 409, "duplicate")
    assert get_project(server, slug) == before


@pytest.mark.parametrize(
    ("slug", "status", "code"),
    [
        ("Upper", 422, "invalid_slug"),
        ("-leading-dash", 422, "invalid_slug"),
        ("under_score", 422, "invalid_slug"),
        ("dot.ted", 422, "invalid_slug"),
        ("", 422, "invalid_slug"),
        ("a" * 64, 422, "invalid_request"),
    ],
)
def test_invalid_project_slug(server: Server, slug: str, status: int, code: str) -> None:
    before = project_slugs(server)
    r = server.admin.post("/api/projects", json={"slug": slug})
    assert_error(r, status, code)
    assert project_slugs(server) == before


@pytest.mark.parametrize(
    ("stages", "code"),
    [
        ([], "invalid_stages"),
        (["dev", "dev"], "invalid_stages"),
        (["Dev"], "invalid_slug"),
        (["ok", "not ok"], "invalid_slug"),
        ([f"s{i}" for i in range(33)], "invalid_stages"),
    ],
)
def test_invalid_stages_on_create(server: Server, stages: list[str], code: str) -> None:
    slug = unique("proj")
    r = server.admin.post("/api/projects", json={"slug": slug, "stages": stages})
    assert_error(r, 422, code)
    assert_error(server.viewer.get(f"/api/projects/{slug}"), 404, "not_found")


def test_unknown_field_in_project_body(server: Server) -> None:
    slug = unique("proj")
    r = server.admin.post("/api/projects", json={"slug": slug, "colour": "blue"})
    assert_error(r, 422, "invalid_request")
    assert_error(server.viewer.get(f"/api/projects/{slug}"), 404, "not_found")


def test_patch_stages_adds_and_reorders(server: Server, project: str) -> None:
    wanted = ["production", "preview", "development", "staging"]
    r = server.admin.patch(f"/api/projects/{project}", json={"stages": wanted})
    assert r.status_code == 200, r.text
    assert r.json()["stages"] == wanted
    assert get_project(server, project)["stages"] == wanted


def test_patch_description_keeps_stages(server: Server, project: str) -> None:
    r = server.admin.patch(f"/api/projects/{project}", json={"description": "new words"})
    assert r.status_code == 200, r.text
    after = get_project(server, project)
    assert after["description"] == "new words"
    assert after["stages"] == DEFAULT_STAGES


def test_patch_removes_an_empty_stage(server: Server, project: str) -> None:
    create_workload(server, project, stage="production")
    r = server.admin.patch(f"/api/projects/{project}", json={"stages": ["production"]})
    assert r.status_code == 200, r.text
    assert get_project(server, project)["stages"] == ["production"]


def test_removing_a_stage_with_workloads_is_409(server: Server, project: str) -> None:
    create_workload(server, project, stage="staging")
    before = get_project(server, project)
    r = server.admin.patch(
        f"/api/projects/{project}", json={"stages": ["development", "production"]}
    )
    assert_error(r, 409, "stage_in_use")
    assert get_project(server, project) == before


@pytest.mark.parametrize(
    ("stages", "code"),
    [([], "invalid_stages"), (["a", "a"], "invalid_stages"), (["Nope"], "invalid_slug")],
)
def test_patch_invalid_stages_changes_nothing(
    server: Server, project: str, stages: list[str], code: str
) -> None:
    before = get_project(server, project)
    r = server.admin.patch(f"/api/projects/{project}", json={"stages": stages})
    assert_error(r, 422, code)
    assert get_project(server, project) == before


def test_patch_unknown_project_is_404(server: Server) -> None:
    slug = unique("missing")
    r = server.admin.patch(f"/api/projects/{slug}", json={"description": "x"})
    assert_error(r, 404, "not_found")
    assert slug not in project_slugs(server)


def test_get_unknown_project_is_404(server: Server) -> None:
    assert_error(server.viewer.get(f"/api/projects/{unique('missing')}"), 404, "not_found")


def test_delete_empty_project(server: Server, project: str) -> None:
    r = server.admin.delete(f"/api/projects/{project}")
    assert r.status_code == 204, r.text
    assert_error(server.viewer.get(f"/api/projects/{project}"), 404, "not_found")
    assert project not in project_slugs(server)
    assert_error(server.admin.delete(f"/api/projects/{project}"), 404, "not_found")


def test_delete_project_with_workloads_is_409(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    before = get_project(server, project)
    assert_error(server.admin.delete(f"/api/projects/{project}"), 409, "project_not_empty")
    assert get_project(server, project) == before
    assert server.viewer.get(f"/api/workloads/{workload['id']}").status_code == 200

    assert server.admin.delete(f"/api/workloads/{workload['id']}").status_code == 204
    assert server.admin.delete(f"/api/projects/{project}").status_code == 204


def test_a_deleted_slug_can_be_created_again(server: Server, project: str) -> None:
    assert server.admin.delete(f"/api/projects/{project}").status_code == 204
    r = server.admin.post("/api/projects", json={"slug": project, "stages": ["only"]})
    assert r.status_code == 201, r.text
    assert get_project(server, project)["stages"] == ["only"]


def test_operator_cannot_create_a_project(server: Server) -> None:
    slug = unique("proj")
    assert_error(server.operator.post("/api/projects", json={"slug": slug}), 403, "forbidden")
    assert slug not in project_slugs(server)
