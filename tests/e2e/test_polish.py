"""The small things a newcomer trips over (issue 15): a title per page, destructive buttons
that are quiet until asked (and confirmed), audit rows with names and readable changes, the
login hint without literal backticks, projects first in Settings."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server
from tests.e2e.conftest import Ui


def test_titles_quiet_buttons_and_a_readable_audit(
    ui: Ui, server: Server, workload: dict[str, Any]
) -> None:
    page = ui.page
    page.goto(server.url + "/login")
    expect(page).to_have_title("Log in to Moorage · Moorage")
    hint = page.locator("[data-testid=first-start]")
    expect(hint.locator("code")).to_have_text("make run")
    assert "`" not in hint.inner_text()

    ui.login()
    expect(page).to_have_title("Apps · Moorage")
    ui.go(f"/apps/{workload['id']}")
    expect(page).to_have_title(f"{workload['name']} · Moorage")

    ui.go("/settings")
    expect(page).to_have_title("Settings · Moorage")
    sections = page.locator("main [id]").evaluate_all("els => els.map(e => e.id)")
    assert sections[:2] == ["projects", "tokens"], sections
    revoke = page.locator("[data-testid=token-revoke]").first
    expect(revoke).to_be_visible()
    background = revoke.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background in ("rgba(0, 0, 0, 0)", "transparent"), background
    revoke.click()
    expect(page.locator("[data-testid=token-revoke-dialog]")).to_be_visible()
    page.click("[data-testid=token-revoke-cancel]")

    r = server.operator.patch(f"/api/workloads/{workload['id']}", json={"keep_last": 3})
    assert r.status_code == 200, r.text
    ui.go(f"/audit?target_type=workload&target_id={workload['id']}")
    expect(page).to_have_title("Audit log · Moorage")
    row = page.locator("[data-testid=audit-row][data-action='workload.update']").first
    expect(row.locator("[data-testid=audit-target]")).to_have_text(workload["name"])
    details = row.locator("[data-testid=audit-details]")
    expect(details.locator("dt")).to_contain_text(["fields"])
    expect(details).to_contain_text("keep_last")
    assert "{" not in details.inner_text(), details.inner_text()
