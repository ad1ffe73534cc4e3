"""Issue 16's screens in a real browser, against a real server and engine: a restore drill
started from the snapshots tab passes and marks the snapshot (and the app) verified; a
clone made from the snapshot's dialog opens the new app, which holds the snapshot's
data; with before-deploy checkpoints, a rollback with data from the deployment's panel
brings the old data back; a recovery point of the stage is made from Settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.conftest import Server, create_workload, free_port, unique
from tests.e2e.conftest import Ui
from tests.integration.helpers import deploy, get_text, wait_until
from tests.storage.test_offsite_api import capture

SLOW = 120_000  # ms: a drill unpacks, starts a container and probes it


def site(server: Server, project: str, text: str) -> tuple[dict[str, Any], Path, int]:
    """A deployed httpd app serving ``text`` from its stage volume ``www``."""
    port, name = free_port(), unique("site")
    w = create_workload(
        server,
        project,
        name=name,
        config={
            "image": "moorage-test/httpd:1",
            "ports": [{"container": 8080, "host": port}],
            "health": {"http": "/", "grace_seconds": 0},
        },
    )
    volumes = [{"name": "www", "scope": "stage", "source": f"{name}/www", "target": "/www"}]
    r = server.operator.put(f"/api/workloads/{w['id']}/volumes", json=volumes)
    assert r.status_code == 200, r.text
    www = server.data_dir / "volumes" / project / "production" / name / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text(text)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    return w, www, port


def test_a_drill_from_the_snapshots_tab_and_a_clone_from_its_dialog(
    ui: Ui, server: Server, project: str
) -> None:
    w, www, _port = site(server, project, "from the snapshot\n")
    snap = capture(server.operator, w["id"])
    assert snap["status"] == "ready", snap
    (www / "index.html").write_text("changed since\n")
    page = ui.page
    ui.login()
    ui.go(f"/apps/{w['id']}")
    page.click("[data-testid=tab-snapshots]")
    row = page.locator("[data-testid=snapshot-row]", has_text=snap["id"][:10]).first
    row.locator("[data-testid=snapshot-drill]").click()
    expect(row.locator("[data-testid=drill-result]")).to_have_attribute(
        "data-status", "passed", timeout=SLOW
    )
    ui.reload()
    page.click("[data-testid=tab-snapshots]")
    expect(page.locator("[data-testid=snapshot-verified]").first).to_be_visible()
    expect(page.locator("[data-testid=drill-verified]").first).to_be_visible()
    assert (www / "index.html").read_text() == "changed since\n"  # the live data untouched

    row = page.locator("[data-testid=snapshot-row]", has_text=snap["id"][:10]).first
    row.locator("[data-testid=snapshot-clone]").click()
    page.fill("[data-testid=clone-name]", f"{w['name']}-copy")
    page.click("[data-testid=clone-confirm]")
    page.wait_for_url(re.compile(r".*/apps/wl_[0-9a-f]+$"), timeout=60_000)
    clone_id = page.url.rsplit("/", 1)[1]
    assert clone_id != w["id"]
    copied = www.parent.parent / f"{w['name']}-copy" / "www" / "index.html"
    assert copied.read_text() == "from the snapshot\n"
    ui.shot("drill-and-clone")


def test_rollback_with_data_and_a_recovery_point_from_the_ui(
    ui: Ui, server: Server, project: str
) -> None:
    w, www, port = site(server, project, "good data\n")
    page = ui.page
    ui.login()
    ui.go(f"/apps/{w['id']}")
    page.select_option("[data-testid=checkpoint-select]", "before-deploy")
    page.click("[data-testid=save-settings]")
    wait_until(
        lambda: (
            server.admin.get(f"/api/workloads/{w['id']}").json()["checkpoint"] == "before-deploy"
        ),
        30,
        "the checkpoint setting",
    )
    first = server.operator.get(f"/api/workloads/{w['id']}/deployments").json()["items"][0]
    # A new version whose "migration" breaks the data; its deploy took a checkpoint first.
    later = deploy(server.operator, w["id"])
    assert later["status"] == "succeeded" and later["checkpoint_snapshot_id"], later
    (www / "index.html").write_text("broken by the migration\n")
    assert get_text(port) == "broken by the migration\n"

    ui.go(f"/apps/{w['id']}?tab=deployments&d={first['id']}")
    page.click("[data-testid=rollback-data]")
    page.fill("[data-testid=rollback-name]", w["name"])
    page.click("[data-testid=rollback-confirm]")
    expect(page.locator("[data-testid=rollback-dialog]")).to_have_count(0, timeout=30_000)
    wait_until(lambda: get_text(port) == "good data\n", 120, "the old data served again")

    # A stateless app of the stage: nothing of it to capture, and the point says so.
    bare = create_workload(server, project, config={"image": "moorage-test/httpd:1"})
    ui.go("/settings")
    projects = page.locator(f"[data-testid=project-row][data-slug={project}]")
    points = projects.locator("[data-testid=recovery-points]").first
    points.locator("summary").click()
    points.locator("[data-testid=rp-stage]").select_option("production")
    points.locator("[data-testid=rp-create]").click()
    expect(points.locator("[data-testid=rp-row]").first).to_have_attribute(
        "data-status", "ready", timeout=SLOW
    )
    expect(points.locator("[data-testid=rp-skipped]").first).to_contain_text(bare["name"])
    ui.shot("recovery-point")
