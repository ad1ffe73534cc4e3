"""Settings -> DNS providers in a browser (issue 18): an admin adds an RFC 2136 provider
from the JSON settings, sees it listed with its secret masked, edits it with the mask left
(the zone changes, the secret is never shown) and removes it with a confirm; an operator
does not see the section."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.conftest import Server, unique
from tests.e2e.conftest import Ui

SECRET = "ZTJlIGRucyBwcm92aWRlciBzZWNyZXQ="


def test_an_admin_adds_edits_and_removes_a_dns_provider(ui: Ui, server: Server) -> None:
    name = unique("bind")
    ui.login()
    page = ui.go("/settings#dns-providers")
    section = page.locator("[data-testid=dns-providers]")
    section.locator("[data-testid=dns-name]").fill(name)
    config = {"server": "127.0.0.1:53", "zone": "e2e.test", "key_name": "e2e", "key_secret": SECRET}
    section.locator("[data-testid=dns-config]").fill(json.dumps(config))
    section.locator("[data-testid=dns-save]").click()
    row = section.locator(f"[data-testid=dns-row][data-name='{name}']")
    expect(row).to_contain_text("zone=e2e.test")
    expect(row).not_to_contain_text(SECRET)
    ui.shot("settings-dns-providers")

    row.locator("[data-testid=dns-edit]").click()
    shown = json.loads(section.locator("[data-testid=dns-config]").input_value())
    assert shown["key_secret"] != SECRET and shown["zone"] == "e2e.test"
    section.locator("[data-testid=dns-config]").fill(json.dumps({**shown, "zone": "other.test"}))
    section.locator("[data-testid=dns-save]").click()
    expect(row).to_contain_text("zone=other.test")
    [stored] = [
        p for p in server.admin.get("/api/dns-providers").json()["items"] if p["name"] == name
    ]
    assert stored["config"]["zone"] == "other.test"

    row.locator("[data-testid=dns-remove]").click()
    page.click("[data-testid=dns-remove-confirm]")
    expect(row).to_have_count(0)
    names = [p["name"] for p in server.admin.get("/api/dns-providers").json()["items"]]
    assert name not in names


def test_an_operator_does_not_see_dns_providers(ui: Ui) -> None:
    ui.login("olga", "olga-password")
    page = ui.go("/settings")
    expect(page.locator("[data-testid=tokens]")).to_be_visible()
    expect(page.locator("[data-testid=dns-providers]")).to_have_count(0)
