"""Every page in English and Russian at desktop and phone width: screenshots of each; in
Russian no English left on any page visited (dialogs, option lists and the 404 page too)
and the deployment log read out in Russian; and at both widths no button clipped (every
button's box inside the viewport, its text inside its box)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Server, create_workload, unique
from tests.e2e.conftest import Ui, english_left, latin_in_russian
from tests.integration.helpers import deploy

# Text a person reads, minus what is data rather than UI: logs, code, ids, form values.
VISIBLE_TEXT = """() => {
  const skip = 'pre, code, textarea, script, style, .mono, [data-i18n-skip]';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || !el.checkVisibility()) continue;
    out.push(n.textContent);
  }
  for (const el of document.querySelectorAll('[placeholder], [aria-label], [title]')) {
    if (el.closest(skip)) continue;
    for (const a of ['placeholder', 'aria-label', 'title']) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out.join('\\n');
}"""

# Buttons (and what looks like one) whose box leaves the viewport or whose text overflows it.
CLIPPED = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  const sel = 'button, a.button, select, input[type=submit], label.button, [role=radio]';
  for (const el of document.querySelectorAll(sel)) {
    if (!el.checkVisibility() || el.closest('[data-i18n-skip]')) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) continue;  // a visually hidden input
    const text = (el.innerText || el.getAttribute('aria-label') || el.tagName).trim().slice(0, 40);
    if (r.left < -0.5 || r.right > width + 0.5) {
      out.push(`outside: ${text} (${r.left}..${r.right} of ${width})`);
    } else if (el.tagName !== 'SELECT' && el.scrollWidth > el.clientWidth + 1) {
      out.push(`text cut: ${text}`);
    }
  }
  return out;
}"""


@pytest.fixture
def site(server: Server, project: str) -> dict[str, Any]:
    """An app with a volume, a deployment, a snapshot and a bound webhook: no page is empty."""
    workload = create_workload(
        server, project, name=unique("shop"), config={"image": "moorage-test/httpd:1"}
    )
    wid = workload["id"]
    volume = {"name": "data", "scope": "stage", "source": "data", "target": "/www"}
    assert server.admin.put(f"/api/workloads/{wid}/volumes", json=[volume]).status_code == 200
    assert server.admin.post(f"/api/workloads/{wid}/deploy").status_code == 202
    hook = {"kind": "webhook", "name": unique("push"), "config": {"provider": "github"}}
    assert server.admin.post(f"/api/workloads/{wid}/triggers", json={"trigger": hook}).is_success
    r = server.admin.post(f"/api/workloads/{wid}/snapshots", json={"mode": "none"})
    assert r.status_code == 202, r.text
    return workload


@pytest.fixture
def broken(server: Server, project: str) -> dict[str, Any]:
    """An app whose deploy failed its health check: its reason must read in Russian too."""
    config = {
        "image": "moorage-test/httpd:1",
        "ports": [{"container": 8080}],
        "health": {"http": "/missing", "timeout_seconds": 3},
    }
    workload = create_workload(server, project, name=unique("shop"), config=config)
    assert deploy(server.admin, workload["id"])["status"] == "failed"
    return workload


def data_words(server: Server, site: dict[str, Any]) -> set[str]:
    """Words that come from the user's own data (names, slugs, images, usernames)."""
    text = " ".join(
        [
            site["name"],
            site["project"],
            site["stage"],
            site["config"]["image"],
            "data",  # the volume's name
            "missing",  # the broken app's health path
            " ".join(u["username"] for u in server.admin.get("/api/users").json()["items"]),
            " ".join(t["name"] for t in server.admin.get("/api/triggers").json()["items"]),
            " ".join(t["name"] for t in server.admin.get("/api/tokens").json()["items"]),
            " ".join(p["slug"] for p in server.admin.get("/api/projects").json()["items"]),
            " ".join(
                " ".join(p["stages"]) for p in server.admin.get("/api/projects").json()["items"]
            ),
            " ".join(w["name"] for w in server.admin.get("/api/workloads").json()["items"]),
        ]
    )
    return set(re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text)) | latin_in_russian()


def pages(workload_id: str, broken_id: str) -> dict[str, str]:
    tabs = ("overview", "deployments", "env", "volumes", "triggers", "snapshots")
    return {
        "apps": "/apps",
        "apps-new": "/apps/new",
        **{f"app-{tab}": f"/apps/{workload_id}?tab={tab}" for tab in tabs},
        "app-failed-deploy": f"/apps/{broken_id}?tab=deployments",
        "triggers": "/triggers",
        "audit": "/audit",
        "settings": "/settings",
        "not-found": "/no-such-page",
        "schedule-dialog": "/triggers",
    }


# One test per language, so two workers share the 64 page views.
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_page_in_english_and_russian(
    ui: Ui, server: Server, site: dict[str, Any], broken: dict[str, Any], lang: str
) -> None:
    ui.login()
    allowed = data_words(server, site)
    leaks: dict[str, list[str]] = {}
    clipped: dict[str, list[str]] = {}
    ui.page.set_viewport_size({"width": 1280, "height": 900})  # the phone menu hides it
    ui.go("/apps")
    ui.set_language(lang)
    expect(ui.page.locator("html")).to_have_attribute("lang", lang)
    for name, path in pages(site["id"], broken["id"]).items():
        for width in (1280, 390):
            ui.page.set_viewport_size({"width": width, "height": 900})
            ui.go(path)
            if name == "apps-new":
                ui.page.click("[data-testid=kind-image]")  # show the generated form too
            if name == "schedule-dialog":
                ui.page.click("[data-testid=new-trigger]")
                ui.page.select_option("[data-testid=trigger-kind]", "schedule")
            ui.page.wait_for_timeout(300)
            ui.shot(f"{lang}-{name}-{width}")
            if lang == "ru" and name == "app-deployments":
                # The server writes the log in English; the page reads it out in
                # Russian (web/src/lib/loglines.ts, moorage/log_catalog.py).
                log = ui.page.locator("[data-testid=deploy-log]")
                expect(log).to_contain_text("развёртывание приложения")
            if lang == "ru" and name == "app-failed-deploy":
                errors = ui.page.locator(".error-text")
                expect(errors.first).to_contain_text("не стал исправным за 3 с")  # noqa: RUF001
            cut = ui.page.evaluate(CLIPPED)
            if cut:
                clipped[f"{lang}:{name}@{width}"] = cut
            if lang == "ru":
                found = english_left(ui.page.evaluate(VISIBLE_TEXT), allowed)
                if found:
                    leaks[f"{name}@{width}"] = found
    assert leaks == {}, json.dumps(leaks, indent=1, ensure_ascii=False)
    assert clipped == {}, json.dumps(clipped, indent=1, ensure_ascii=False)


def test_the_language_choice_survives_a_reload(ui: Ui) -> None:
    ui.login()
    ui.set_language("ru")
    ui.reload()
    expect(ui.page.locator("html")).to_have_attribute("lang", "ru")
    expect(ui.page.locator("[data-testid=lang]")).to_have_value("ru")
    ui.set_language("en")
    ui.reload()
    expect(ui.page.locator("html")).to_have_attribute("lang", "en")
