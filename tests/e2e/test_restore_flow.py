"""The whole story in a real browser: log in, create an image app, deploy it, snapshot its
volume, change the data, restore through the danger dialog, and see the old data served."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import Server, free_port, unique
from tests.e2e.conftest import Ui


def served(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip()
    except httpx.HTTPError:
        return ""


def wait_for(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def write_page(workload_id: str, text: str) -> None:
    """Change the volume's data from inside the running container (docker exec)."""
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=moorage.workload={workload_id}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(ids) == 1, ids
    subprocess.run(
        ["docker", "exec", ids[0], "sh", "-c", f"echo {text} > /www/index.html"], check=True
    )


def create_image_app(page: Page, project: str, name: str, port: int) -> str:
    page.click("[data-testid=kind-image]")
    page.fill("[data-testid=app-name]", name)
    page.select_option("[data-testid=app-project]", project)
    page.select_option("[data-testid=app-stage]", "production")
    # The form starts empty (the kind's sample only as placeholders), the health check off.
    page.fill("[data-testid=config-image]", "moorage-test/httpd:1")
    page.fill("[data-testid=config-command]", "httpd\n-f\n-p\n8080\n-h\n/www")
    page.click("[data-testid=config-ports-add]")
    page.fill("[data-testid='config-ports.0.container']", "8080")
    page.fill("[data-testid='config-ports.0.host']", str(port))
    expect(page.locator("[data-testid=config-health-set]")).not_to_be_checked()
    page.click("[data-testid=create-app]")
    page.wait_for_url(re.compile(r".*/apps/wl_[0-9a-f]+"))
    return page.url.rsplit("/", 1)[1].split("?")[0]


def add_volume(page: Page) -> None:
    page.click("[data-testid=tab-volumes]")
    page.click("[data-testid=volume-add]")
    row = page.locator("[data-testid=volume-row]").last
    row.locator("[data-testid=volume-name]").fill("data")
    row.locator("[data-testid=volume-scope]").select_option("stage")
    row.locator("[data-testid=volume-source]").fill("data")
    row.locator("[data-testid=volume-target]").fill("/www")
    page.click("[data-testid=volumes-save]")
    expect(row.locator("[data-testid=volume-host-path]")).to_contain_text("data")


def test_deploy_snapshot_change_restore(ui: Ui, server: Server, project: str) -> None:
    page = ui.page
    name, port = unique("site"), free_port()
    ui.login()
    ui.go("/apps/new")
    workload_id = create_image_app(page, project, name, port)
    add_volume(page)

    # Deploy and watch the log until the app runs.
    page.click("[data-testid=tab-overview]")
    page.click("[data-testid=deploy]")
    expect(page.locator("[data-testid=deploy-log]")).to_be_visible()
    header_status = page.locator("[data-testid=app-header] [data-testid=status]")
    expect(header_status).to_have_attribute("data-status", "running", timeout=60_000)
    write_page(workload_id, "original")
    wait_for(lambda: served(port) == "original", "the app to serve the original page")

    # Capture a snapshot (mode stop) and wait until it is ready.
    page.click("[data-testid=tab-snapshots]")
    page.check("[data-testid=capture-mode-stop]")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/snapshots")
    ) as answer:
        page.click("[data-testid=capture-submit]")
    assert answer.value.status == 202, answer.value.text()
    manual = page.locator("[data-testid=snapshot-row][data-origin=manual]")
    expect(manual).to_have_attribute("data-status", "ready", timeout=60_000)
    wait_for(lambda: served(port) == "original", "the app to come back after the capture")

    write_page(workload_id, "changed")
    assert served(port) == "changed"

    # The dialog refuses anything but the exact name; Esc cancels.
    manual.locator("[data-testid=snapshot-restore]").click()
    dialog = page.locator("[data-testid=restore-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("data")  # the volume that will be replaced
    confirm = page.locator("[data-testid=restore-confirm]")
    typed = page.locator("[data-testid=restore-confirm-input]")
    expect(typed).to_be_focused()
    expect(confirm).to_be_disabled()
    typed.fill(name.upper())
    typed.press("Enter")
    expect(confirm).to_be_disabled()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert server.admin.get(f"/api/workloads/{workload_id}/restores").json()["items"] == []
    assert served(port) == "changed"

    # Type the name and press Enter: the restore runs, then the old data is served again.
    manual.locator("[data-testid=snapshot-restore]").click()
    typed.fill(name)
    expect(confirm).to_be_enabled()
    typed.press("Enter")
    result = page.locator("[data-testid=restore-result]")
    expect(result).to_have_attribute("data-status", "succeeded", timeout=120_000)
    wait_for(lambda: served(port) == "original", "the restored page")
    (restore,) = server.admin.get(f"/api/workloads/{workload_id}/restores").json()["items"]
    pre = restore["pre_restore_snapshot_id"]
    assert pre
    page.click("[data-testid=show-pre-restore]")
    pre_row = page.locator(f"[data-testid=snapshot-row][data-id={pre}]")
    expect(pre_row).to_have_attribute("data-origin", "pre-restore")
    ui.shot("flow-restored")
