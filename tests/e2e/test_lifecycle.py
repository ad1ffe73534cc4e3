"""The app page's lifecycle in a browser: stop (confirmed), start, the "changes not deployed"
mark, a never-deployed app's desired state, and a shared-volume refusal naming the other app."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server, create_workload
from tests.e2e.conftest import Ui
from tests.integration.helpers import deploy

QUICK = {"image": "moorage-test/httpd:1", "health": {"grace_seconds": 0.5}}


def test_stop_start_and_the_pending_mark(ui: Ui, server: Server, project: str) -> None:
    w = create_workload(server, project, config=QUICK)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    body = {"MODE": {"value": "edited", "secret": False}}
    assert server.operator.put(f"/api/workloads/{w['id']}/env", json=body).status_code == 200

    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}")
    status = page.locator("[data-testid=app-header] [data-testid=status]")
    expect(page.locator("[data-testid=app-header] [data-testid=pending-changes]")).to_be_visible()
    expect(status).to_have_attribute("data-status", "running")

    page.click("[data-testid=app-stop]")
    expect(page.locator("[data-testid=stop-app-dialog]")).to_be_visible()
    page.click("[data-testid=stop-app-confirm]")
    expect(status).to_have_attribute("data-status", "stopped")
    expect(page.locator("[data-testid=desired-state] [data-testid=status]")).to_have_attribute(
        "data-status", "stopped"
    )
    assert server.operator.get(f"/api/workloads/{w['id']}").json()["desired_state"] == "stopped"

    page.click("[data-testid=app-start]")
    expect(status).to_have_attribute("data-status", "running")
    expect(page.locator("[data-testid=app-stop]")).to_be_visible()
    assert not ui.errors, ui.errors


def test_a_never_deployed_app_runs_once_deployed(ui: Ui, workload: dict[str, Any]) -> None:
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{workload['id']}")
    desired = page.locator("[data-testid=desired-state]")
    expect(desired).not_to_contain_text("running")
    expect(desired.locator("[data-testid=status]")).to_have_count(0)
    expect(page.locator("[data-testid=app-restart]")).to_have_count(0)


def test_a_shared_directory_is_refused_naming_the_other_app(
    ui: Ui, server: Server, project: str
) -> None:
    first = create_workload(server, project)
    data = [{"name": "data", "scope": "stage", "source": "data", "target": "/data"}]
    assert (
        server.operator.put(f"/api/workloads/{first['id']}/volumes", json=data).status_code == 200
    )
    second = create_workload(server, project)

    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{second['id']}?tab=volumes")
    page.click("[data-testid=volume-add]")
    row = page.locator("[data-testid=volume-row]").last
    for field, value in data[0].items():
        if field != "scope":
            row.locator(f"[data-testid=volume-{field}]").fill(value)
    row.locator("[data-testid=volume-shared]").check()  # this side only: still refused
    page.click("[data-testid=volumes-save]")
    expect(page.locator("[data-testid=volumes-error]")).to_contain_text(first["name"])
    assert server.operator.get(f"/api/workloads/{second['id']}/volumes").json()["items"] == []
