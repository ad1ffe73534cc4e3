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


DOTENV = """# pasted from a .env file
MODE=staging
export GREETING="hello world"  # a comment
EMPTY=
"""


def test_env_in_bulk_from_a_pasted_dotenv(ui: Ui, server: Server, workload: dict[str, Any]) -> None:
    url = f"/api/workloads/{workload['id']}/env"
    body = {
        "MODE": {"value": "dev", "secret": False},
        "TOKEN": {"value": "s3cret-token", "secret": True},
    }
    assert server.operator.put(url, json=body).status_code == 200
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{workload['id']}?tab=env")
    ui.page.set_viewport_size({"width": 390, "height": 700})
    page.click("[data-testid=env-paste-open]")
    page.fill("[data-testid=env-paste]", "MODE=x\nthis is not a pair\n")
    page.click("[data-testid=env-paste-apply]")
    expect(page.locator("[data-testid=env-paste-error]")).to_contain_text("2")
    expect(page.locator("[data-testid=env-row]")).to_have_count(2)  # nothing applied

    page.fill("[data-testid=env-paste]", DOTENV)
    page.click("[data-testid=env-paste-apply]")
    expect(page.locator("[data-testid=env-row]")).to_have_count(4)
    expect(page.locator("[data-testid=env-paste-panel]")).to_have_count(0)
    assert server.operator.get(url).json()["MODE"]["value"] == "dev"  # not saved yet
    page.click("[data-testid=env-save]")
    toast = page.locator("[data-testid=toast][data-kind=ok]").last
    expect(toast).to_contain_text("saved")
    assert server.operator.get(url).json() == {
        "MODE": {"value": "staging", "secret": False},
        "TOKEN": {"value": None, "secret": True},
        "GREETING": {"value": "hello world", "secret": False},
        "EMPTY": {"value": "", "secret": False},
    }
    assert server.operator.get(url + "/TOKEN").json()["value"] == "s3cret-token"

    # The toast covers nothing: scrolled to the end, the last button stays clear of it.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(toast).to_be_visible()
    box = toast.bounding_box()
    save = page.locator("[data-testid=env-save]").bounding_box()
    assert box is not None and save is not None
    assert save["y"] + save["height"] <= box["y"], (save, box)
