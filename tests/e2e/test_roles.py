"""What the UI offers follows the role, and a wrong password is a clear, translated refusal."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server
from tests.e2e.conftest import Ui


def test_wrong_password_is_refused_in_the_chosen_language(ui: Ui) -> None:
    ui.go("/login")
    ui.set_language("ru")
    ui.page.fill("#username", "admin")
    ui.page.fill("#password", "not-the-password")
    ui.page.click("button[type=submit]")
    expect(ui.page.locator("[data-testid=login-error]")).to_have_text(
        "Неверное имя пользователя или пароль."
    )
    assert ui.page.url.endswith("/login")


def test_a_page_asked_for_before_login_opens_after_it(ui: Ui, workload: dict[str, Any]) -> None:
    ui.go(f"/apps/{workload['id']}?tab=snapshots")
    ui.page.wait_for_url(re.compile(r".*/login\?next=.*"))
    ui.page.fill("#username", "victor")
    ui.page.fill("#password", "victor-password")
    ui.page.click("button[type=submit]")
    ui.page.wait_for_url(re.compile(rf".*/apps/{workload['id']}\?tab=snapshots$"))


def test_a_viewer_sees_everything_and_can_change_nothing(
    ui: Ui, server: Server, workload: dict[str, Any]
) -> None:
    ui.login("victor", "victor-password")
    nav = ui.page.locator("header nav")
    expect(nav.get_by_role("link")).to_have_count(3)  # apps, triggers, settings: no audit
    ui.go(f"/apps/{workload['id']}")
    expect(ui.page.locator("[data-testid=app-name]")).to_have_text(workload["name"])
    expect(ui.page.locator("[data-testid=deploy]")).to_have_count(0)
    # Container output often prints secrets: like env values, it is for operators.
    expect(ui.page.locator("[data-testid=container-logs-panel]")).to_have_count(0)
    ui.go(f"/apps/{workload['id']}?tab=env")
    expect(ui.page.locator("[data-testid=operator-only]")).to_be_visible()
    ui.go(f"/apps/{workload['id']}?tab=snapshots")
    expect(ui.page.locator("[data-testid=snapshots-count]")).to_be_visible()
    expect(ui.page.locator("[data-testid=capture-submit]")).to_have_count(0)
    expect(ui.page.locator("[data-testid=import-file]")).to_have_count(0)
    ui.go("/audit")
    expect(ui.page.locator("[data-testid=empty]")).to_be_visible()
    ui.shot("viewer-audit")
