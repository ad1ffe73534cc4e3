"""The Volumes tab in a browser (issue 15): a blank row is a field error, never "Volumes
saved"; a Compose app is told plainly that Moorage volumes arrive with stacks, with no Save
to fail and no Snapshots hint sending it back to Volumes."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server, create_workload
from tests.e2e.conftest import Ui

COMPOSE = "services:\n  web:\n    image: moorage-test/httpd:1\n"


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


def test_a_compose_app_is_told_volumes_arrive_with_stacks(
    ui: Ui, server: Server, project: str
) -> None:
    w = create_workload(server, project, kind="compose", config={"compose": COMPOSE})
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}?tab=volumes")
    expect(page.locator("[data-testid=volumes-unsupported]")).to_contain_text("stacks")
    expect(page.locator("[data-testid=volumes-save]")).to_have_count(0)
    expect(page.locator("[data-testid=volume-add]")).to_have_count(0)

    page = ui.go(f"/apps/{w['id']}?tab=snapshots")
    expect(page.locator("[data-testid=snapshots-unsupported]")).to_contain_text("stacks")
    expect(page.locator("[data-testid=capture-submit]")).to_have_count(0)
    expect(page.locator("a[href*='tab=volumes']")).to_have_count(1)  # only the tab itself
