"""The Domains tab in a browser (issue 18): an operator adds a domain and sees it saved, a
refused one shows the reason beside the rows with nothing saved, a viewer reads without
editing, and the instance without a proxy says so."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import Server, create_workload
from tests.e2e.conftest import Ui


def test_domains_are_added_refused_and_read(ui: Ui, server: Server, project: str) -> None:
    config = {"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]}
    w = create_workload(server, project, config=config)
    url = f"/api/workloads/{w['id']}/domains"
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}?tab=domains")
    expect(page.locator("[data-testid=domains-no-proxy]")).to_be_visible()
    page.click("[data-testid=domain-add]")
    row = page.locator("[data-testid=domain-row]")
    page.click("[data-testid=domains-save]")  # blank: field errors, nothing sent
    expect(row.locator("[data-testid=domain-host]")).to_have_attribute("aria-invalid", "true")
    assert server.operator.get(url).json()["items"] == []
    row.locator("[data-testid=domain-host]").fill(f"{project}.example.internal")
    row.locator("[data-testid=domain-port]").fill("9999")
    page.click("[data-testid=domains-save]")
    expect(page.locator("[data-testid=domains-error]")).to_be_visible()
    assert server.operator.get(url).json()["items"] == []
    row.locator("[data-testid=domain-port]").fill("8080")
    row.locator("[data-testid=domain-tls]").select_option("internal")
    page.click("[data-testid=domains-save]")
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_be_visible()
    got = server.operator.get(url).json()["items"]
    assert [(d["host"], d["port"], d["tls"]) for d in got] == [
        (f"{project}.example.internal", 8080, "internal")
    ]
    ui.shot("domains-saved")
    ui.set_language("ru")
    expect(page.locator("[data-testid=tab-domains]")).to_have_text("Домены")
    ui.shot("domains-ru")


def test_a_viewer_reads_domains_without_editing(ui: Ui, server: Server, project: str) -> None:
    config = {"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]}
    w = create_workload(server, project, config=config)
    items = [{"host": f"v-{project}.example.internal", "port": 8080, "tls": "off"}]
    assert server.operator.put(f"/api/workloads/{w['id']}/domains", json=items).status_code == 200
    ui.login("victor", "victor-password")
    page = ui.go(f"/apps/{w['id']}?tab=domains")
    expect(page.locator("[data-testid=domain-row]")).to_have_count(1)
    expect(page.locator("[data-testid=domain-host]")).to_be_disabled()
    expect(page.locator("[data-testid=domains-save]")).to_have_count(0)
