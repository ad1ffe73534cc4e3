"""The Volumes tab in a browser (issue 15): a blank row is a field error, never "Volumes
saved"; a Compose app mounts a Moorage volume into one of its services and is told which
of its own named volumes snapshots do not cover, and its Snapshots tab then captures."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server, create_workload
from tests.e2e.conftest import Ui

COMPOSE = (
    "services:\n  web:\n    image: moorage-test/httpd:1\n    volumes: [cache:/cache]\n"
    "volumes:\n  cache: {}\n"
)


def test_a_blank_volume_row_gets_a_field_error(
    ui: Ui, server: Server, workload: dict[str, Any]
) -> None:
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{workload['id']}?tab=volumes")
    page.click("[data-testid=volume-add]")
    row = page.locator("[data-testid=volume-row]")
    page.click("[data-testid=volumes-save]")
    expect(row.locator("[data-testid=volume-field-error]")).to_have_count(3)
    for field in ("name", "source", "target"):
        expect(row.locator(f"[data-testid=volume-{field}]")).to_have_attribute(
            "aria-invalid", "true"
        )
    expect(page.locator("[data-testid=volumes-error]")).to_be_visible()
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_have_count(0)
    ui.shot("volumes-blank-row")
    url = f"/api/workloads/{workload['id']}/volumes"
    assert server.operator.get(url).json()["items"] == []

    row.locator("[data-testid=volume-name]").fill("data")
    expect(row.locator("[data-testid=volume-field-error]")).to_have_count(2)
    row.locator("[data-testid=volume-source]").fill("data")
    row.locator("[data-testid=volume-target]").fill("/data")
    page.click("[data-testid=volumes-save]")
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_be_visible()
    got = server.operator.get(url).json()["items"]
    assert [(v["name"], v["source"], v["target"]) for v in got] == [("data", "data", "/data")]


def test_a_compose_app_mounts_a_volume_into_a_service_and_sees_what_is_not_covered(
    ui: Ui, server: Server, project: str
) -> None:
    w = create_workload(server, project, kind="compose", config={"compose": COMPOSE})
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}?tab=volumes")
    expect(page.locator("[data-testid=volumes-unsupported]")).to_have_count(0)
    covered = page.locator("[data-testid=volumes-not-covered]")
    expect(covered).to_contain_text("cache")
    expect(covered).to_contain_text("web")
    page.click("[data-testid=volume-add]")
    row = page.locator("[data-testid=volume-row]")
    row.locator("[data-testid=volume-name]").fill("data")
    row.locator("[data-testid=volume-source]").fill("data")
    row.locator("[data-testid=volume-target]").fill("/data")
    row.locator("[data-testid=volume-service]").fill("web")
    page.click("[data-testid=volumes-save]")
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_be_visible()
    got = server.operator.get(f"/api/workloads/{w['id']}/volumes").json()["items"]
    assert [(v["name"], v["service"], v["target"]) for v in got] == [("data", "web", "/data")]

    page = ui.go(f"/apps/{w['id']}?tab=snapshots")
    expect(page.locator("[data-testid=snapshots-unsupported]")).to_have_count(0)
    expect(page.locator("[data-testid=capture-submit]")).to_have_count(1)
