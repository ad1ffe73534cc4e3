"""Pictures where people would rather look than read (issue 15): an app's deploy history
strip (succeeded, failed, rolled back) and its snapshots on a timeline with their sizes."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import Server, create_workload
from tests.e2e.conftest import Ui
from tests.integration.helpers import deploy, wait_until

HTTPD = {"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]}


def test_the_deploy_history_strip(ui: Ui, server: Server, project: str) -> None:
    w = create_workload(server, project, config=HTTPD)
    assert deploy(server.operator, w["id"])["status"] == "succeeded"
    broken = {"health": {"http": "/missing", "timeout_seconds": 2}}
    r = server.operator.patch(f"/api/workloads/{w['id']}", json={"config": broken})
    assert r.status_code == 200, r.text
    assert deploy(server.operator, w["id"])["status"] == "failed"  # the first one kept serving

    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}")
    marks = page.locator("[data-testid=deploy-history] [data-testid=history-mark]")
    expect(marks).to_have_count(2)
    assert [m.get_attribute("data-outcome") for m in marks.all()] == ["succeeded", "rolled_back"]
    ui.shot("deploy-history")
    marks.last.click()
    expect(page.locator("[data-testid=deploy-log]")).to_have_attribute("data-status", "failed")


def test_the_snapshot_timeline_shows_sizes(ui: Ui, server: Server, project: str) -> None:
    w = create_workload(server, project, config=HTTPD)
    volume = {"name": "data", "scope": "stage", "source": "data", "target": "/www"}
    assert server.admin.put(f"/api/workloads/{w['id']}/volumes", json=[volume]).status_code == 200
    for _ in range(2):
        r = server.operator.post(f"/api/workloads/{w['id']}/snapshots", json={"mode": "none"})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        wait_until(
            lambda sid=sid: (
                server.operator.get(f"/api/workloads/{w['id']}/snapshots/{sid}").json()["status"]
                == "ready"
            ),
            30,
            "the snapshot to be ready",
        )
    sizes = sorted(
        s["size"]
        for s in server.operator.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
    )
    ui.login("olga", "olga-password")
    page = ui.go(f"/apps/{w['id']}?tab=snapshots")
    bars = page.locator("[data-testid=snapshot-timeline] [data-testid=timeline-bar]")
    expect(bars).to_have_count(2)
    assert sorted(int(b.get_attribute("data-size") or -1) for b in bars.all()) == sizes
    expect(page.locator("[data-testid=snapshot-timeline]")).to_contain_text("largest")
    ui.shot("snapshot-timeline")
