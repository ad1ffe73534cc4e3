"""Env in the UI: a secret stays masked until an operator reveals it, and saving without
touching it keeps its value."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server
from tests.e2e.conftest import Ui


def test_reveal_a_secret_then_save_keeps_it(
    ui: Ui, server: Server, workload: dict[str, Any]
) -> None:
    url = f"/api/workloads/{workload['id']}/env"
    body = {"DB_PASSWORD": {"value": "hunter2-secret", "secret": True}}
    assert server.operator.put(url, json=body).status_code == 200
    ui.login("olga", "olga-password")
    ui.go(f"/apps/{workload['id']}?tab=env")
    value = ui.page.locator("[data-testid=env-value]").first
    expect(value).to_have_value("")
    expect(value).to_have_attribute("type", "password")
    ui.page.click("[data-testid=env-reveal]")
    expect(value).to_have_value("hunter2-secret")
    expect(value).to_have_attribute("type", "text")
    # Add a plain variable and save: the secret, never retyped, keeps its value.
    ui.page.click("[data-testid=env-add]")
    ui.page.locator("[data-testid=env-key]").last.fill("MODE")
    ui.page.locator("[data-testid=env-value]").last.fill("prod")
    ui.page.click("[data-testid=env-save]")
    expect(ui.page.locator("[data-testid=toast][data-kind=ok]")).to_be_visible()
    got = server.operator.get(url).json()
    assert got == {
        "DB_PASSWORD": {"value": None, "secret": True},
        "MODE": {"value": "prod", "secret": False},
    }
    revealed = server.operator.get(url + "/DB_PASSWORD").json()
    assert revealed["value"] == "hunter2-secret"
