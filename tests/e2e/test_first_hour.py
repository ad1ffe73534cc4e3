"""A newcomer's first hour in a browser (issue 15): an app from the empty New app form with
only a name, an image and a port, deployed, running and opened at its URL; then its config
edited in the generated form and deployed again."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.conftest import Server, create_workload, unique
from tests.e2e.conftest import Ui
from tests.integration.helpers import deploy


def deploy_and_open(ui: Ui, expected: str) -> None:
    """Press Deploy, wait for the app to run, and open its URL until it answers `expected`
    (a redeploy publishes on a new port: the link follows once the deployment ends)."""
    page = ui.page
    page.click("[data-testid=deploy]")
    header = page.locator("[data-testid=app-header]")
    expect(header.locator("[data-testid=pending-changes]")).to_have_count(0, timeout=60_000)
    expect(header.locator("[data-testid=status]")).to_have_attribute(
        "data-status", "running", timeout=60_000
    )
    link = header.locator("[data-testid=app-url]").first
    deadline = time.monotonic() + 30
    while True:
        url = link.get_attribute("href") or ""
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        try:
            answer = page.context.request.get(url, fail_on_status_code=False)
            got: tuple[int, str] = (answer.status, answer.text())
        except PlaywrightError as exc:  # refused while the new container starts listening
            got = (0, str(exc).splitlines()[0])
        if got[0] == 200 and got[1].strip() == expected:
            break
        assert time.monotonic() < deadline, (url, *got)
        page.wait_for_timeout(500)
    with page.context.expect_page() as new_tab:
        link.click()  # a new tab with the app itself
    opened = new_tab.value
    opened.wait_for_load_state()
    assert opened.url == url and expected in opened.content()
    opened.close()


def test_a_newcomer_deploys_from_the_empty_form(ui: Ui, server: Server, project: str) -> None:
    ui.login("olga", "olga-password")
    page = ui.go("/apps/new")
    page.click("[data-testid=kind-image]")
    # Empty: the sample is only a placeholder, the health check is off.
    image = page.locator("[data-testid=config-image]")
    expect(image).to_have_value("")
    assert image.get_attribute("placeholder"), "the sample shows as a placeholder"
    expect(page.locator("[data-testid=config-command]")).to_have_value("")
    expect(page.locator("[data-testid=config-health-set]")).not_to_be_checked()
    expect(page.locator("[data-testid=config-ports-item]")).to_have_count(0)

    name = unique("first")
    page.fill("[data-testid=app-name]", name)
    page.select_option("[data-testid=app-project]", project)
    image.fill("moorage-test/httpd:1")
    page.click("[data-testid=config-ports-add]")
    page.fill("[data-testid='config-ports.0.container']", "8080")
    # Asked for, the health check's port follows the container port.
    page.check("[data-testid=config-health-set]")
    expect(page.locator("[data-testid='config-health.port']")).to_have_attribute(
        "placeholder", "8080"
    )
    page.uncheck("[data-testid=config-health-set]")
    ui.shot("first-hour-new-app")
    page.click("[data-testid=create-app]")
    page.wait_for_url(re.compile(r".*/apps/wl_[0-9a-f]+$"))

    created = [
        w for w in server.operator.get("/api/workloads").json()["items"] if w["name"] == name
    ]
    assert len(created) == 1
    config = created[0]["config"]
    assert config["image"] == "moorage-test/httpd:1"
    assert [p["container"] for p in config["ports"]] == [8080]
    assert not config.get("command") and not config.get("health"), config

    deploy_and_open(ui, "hello from v1")
    ui.shot("first-hour-running")
    row = ui.go("/apps").locator(f"[data-testid=app-row][data-name={name}]")
    expect(row.locator("[data-testid=app-image]")).to_have_text("moorage-test/httpd:1")
    expect(row.locator("[data-testid=app-ports]")).to_have_text("8080")


def test_the_config_is_edited_in_the_form_and_redeployed(
    ui: Ui, server: Server, project: str
) -> None:
    w = create_workload(
        server, project, config={"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]}
    )
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}")
    page.click("[data-testid=edit-config]")
    expect(page.locator("[data-testid='edit-ports.0.container']")).to_have_value("8080")
    page.fill("[data-testid=edit-image]", "moorage-test/httpd:2")
    page.fill("[data-testid=edit-stop_timeout]", "abc")
    page.click("[data-testid=save-config]")
    expect(page.locator("[data-testid=field-stop_timeout] [role=alert]")).to_be_visible()
    page.fill("[data-testid=edit-stop_timeout]", "5")
    page.click("[data-testid=save-config]")
    expect(page.locator("[data-testid=config-view]")).to_contain_text("moorage-test/httpd:2")
    expect(page.locator("[data-testid=app-header] [data-testid=pending-changes]")).to_be_visible()
    got = server.operator.get(f"/api/workloads/{w['id']}").json()["config"]
    assert got["image"] == "moorage-test/httpd:2" and got["stop_timeout"] == 5, got

    deploy_and_open(ui, "hello from v2")


def test_a_long_health_wait_shows_progress(ui: Ui, server: Server, project: str) -> None:
    config = {
        "image": "moorage-test/httpd:1",
        "ports": [{"container": 8080}],
        "health": {"http": "/missing", "timeout_seconds": 8},
    }
    w = create_workload(server, project, config=config)
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}")
    page.click("[data-testid=deploy]")
    progress = page.locator("[data-testid=deploy-progress]")
    expect(progress).to_contain_text("health: waiting for HTTP /missing to answer (up to 8 s)")
    # Every 5 s or so (a loaded machine probes late): how long so far, and why not yet.
    still = re.compile(r"health: still waiting, [5-7] s of 8 s \(GET /missing answered 404\)")
    expect(progress).to_contain_text(still, timeout=15_000)
    assert re.search(r"Running for ([1-9]\d*) s:", progress.inner_text()), progress.inner_text()
    ui.shot("first-hour-health-progress")
    log = page.locator("[data-testid=deploy-log]")
    expect(log).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(progress).to_have_count(0)
    expect(page.locator("[data-testid=deploy-error]")).to_contain_text("not healthy after 8 s")
