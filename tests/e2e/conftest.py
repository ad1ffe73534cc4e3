"""A real browser (Debian's chromium, driven by Playwright) against a real Moorage server.

No browser can be downloaded here: Playwright launches /usr/bin/chromium, which
scripts/chromium.sh installs with apt when it is missing. Screenshots go under
test-output/e2e/ (MOORAGE_TEST_OUTPUT overrides it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Frame,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import ADMIN_PASSWORD, REPO, Server
from tests.e2e import isolation

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps dialling Google on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(os.environ.get("MOORAGE_TEST_OUTPUT") or REPO / "test-output") / "e2e"
I18N = REPO / "web" / "src" / "lib" / "i18n"
CHUNK_CANCELLED = ("Failed to fetch dynamically imported module", "Unable to preload CSS")
"""Chromium's and Vite's words for a page part (script, stylesheet) whose fetch failed
or was cancelled."""
LATE_CANCEL_SECONDS = 5.0
"""How long after a test's navigation a cancelled page part of the old page may still be
reported: Chromium may run the new page in another renderer process, whose events are not
ordered with the old one's, so the old page's error can arrive after ``goto`` returned (CI
on 58d4464: the root layout's chunk, reported after ``ui.go`` had returned)."""
# An assertion waits as long as an action does (`set_default_timeout` below): on two cores
# under four workers a write the page waits for can take longer than Playwright's 5 s, and
# on a host whose CPU is shared (8% stolen, session 13) a create's redirect took over 20 s.
UI_WAIT_MS = 40_000
expect.set_options(timeout=UI_WAIT_MS)


@pytest.fixture(scope="session")
def browser(web_built: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium in a network namespace of its own where the machine allows it
    (``isolation.py``: Docker's network changes abort the requests of a browser beside it)."""
    subprocess.run([str(REPO / "scripts" / "chromium.sh")], check=True, timeout=900)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        executable, args = CHROMIUM, CHROMIUM_ARGS
        env: dict[str, str | float | bool] | None = None
        if isolation.isolated():
            # A short path: a Unix socket's path has a limit of about 100 bytes.
            where = Path(tempfile.mkdtemp(prefix="moorage-e2e-"))
            stack.callback(shutil.rmtree, where, ignore_errors=True)
            proxy = isolation.SocksProxy(where / "socks")
            stack.callback(proxy.close)
            executable, extra, env = isolation.launch_args(proxy.path)
            args = [*CHROMIUM_ARGS, *extra]
        else:
            print("note: chromium shares the host's network namespace", file=sys.stderr)
        p = stack.enter_context(sync_playwright())
        b = p.chromium.launch(executable_path=executable, args=args, env=env)
        yield b
        b.close()


class Ui:
    """One logged-in browser page plus the checks every page must pass."""

    def __init__(self, page: Page, server: Server) -> None:
        self.page = page
        self.server = server
        self.errors: list[str] = []
        self.journal: list[str] = []
        """What the page met that a failed test's report should show: console warnings and
        errors, API answers of 400 and up, requests that never got an answer, navigations
        (a reload by hooks.client.ts among them), each with its time since the page opened."""
        self._opened = time.monotonic()
        self._leaving = False
        self._left_at = -LATE_CANCEL_SECONDS
        page.on("pageerror", self._page_error)
        # The UI's handleError (web/src/hooks.client.ts): why a page showed its error page.
        page.on("console", self._console)
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)
        page.on("framenavigated", self._navigated)
        page.set_default_timeout(UI_WAIT_MS)

    def _log(self, line: str) -> None:
        self.journal.append(f"{time.monotonic() - self._opened:7.2f}s {line}")

    def _navigated(self, frame: Frame) -> None:
        if frame == self.page.main_frame:
            self._log(f"at {frame.url}")

    def _page_error(self, error: Exception) -> None:
        self._log(f"page error: {error}")
        self._note(str(error))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self._log(f"console {message.type}: {message.text}")
        if message.type == "error" and message.text.startswith("page failed"):
            self._note(message.text)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self._log(f"{response.request.method} {response.url} -> {response.status}")

    def _request_failed(self, request: Request) -> None:
        self._log(f"{request.method} {request.url} failed: {request.failure}")

    def _note(self, error: str) -> None:
        # A navigation the test makes cancels the old page's fetches: a page part still
        # loading then fails on the way out (an uncaught error, or the old page's error
        # page logged by handleError), which no person sees, possibly reported a moment
        # after the navigation returned (LATE_CANCEL_SECONDS). Anything else counts.
        navigated = self._leaving or time.monotonic() - self._left_at < LATE_CANCEL_SECONDS
        if navigated and any(words in error for words in CHUNK_CANCELLED):
            return
        self.errors.append(error)

    @contextmanager
    def _navigating(self) -> Iterator[None]:
        """A navigation the test makes: what the old page cancels meanwhile is no error."""
        self._leaving = True
        try:
            yield
        finally:
            self._leaving = False
            self._left_at = time.monotonic()

    def go(self, path: str) -> Page:
        with self._navigating():
            self.page.goto(self.server.url + path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        # Once the page is settled (its session check answered): on a loaded machine a
        # form filled while the app still starts was met empty at the click.
        for attempt in (1, 2):
            self.go("/login")
            self.page.fill("#username", username)
            self.page.fill("#password", password)
            expect(self.page.locator("#password")).to_have_value(password)
            self.page.click("button[type=submit]")
            try:
                self.page.wait_for_url(re.compile(r".*/apps$"))
                return
            except PlaywrightTimeout:
                # On a machine this loaded a page part can fail to load and the page is
                # loaded again (hooks.client.ts), landing back on the empty form once.
                if attempt == 2:
                    raise

    def shot(self, name: str) -> Path:
        path = OUTPUT / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def set_language(self, lang: str) -> None:
        self.page.select_option("[data-testid=lang]", lang)

    def reload(self) -> Page:
        """Reload the page as a person would (a page part the old page was still loading
        is cancelled, not an error: ``_page_error``), and wait until it settled."""
        with self._navigating():
            self.page.reload()
        self.page.wait_for_load_state("networkidle")
        return self.page


@pytest.fixture
def ui(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Ui]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    ui = Ui(context.new_page(), server)
    yield ui
    ui.shot(f"last-{request.node.name}")  # where the page was when the test ended
    # Shown under "Captured stdout teardown" when the test failed: why a page did not do
    # what the test waited for (an answer it got, a reload) is often only here.
    print("what the page met:", *ui.journal, sep="\n  ")
    context.close()
    assert ui.errors == [], ui.errors


def english_messages() -> list[str]:
    """Every English UI message that Russian says differently, placeholders cut out."""
    en = json.loads((I18N / "en.json").read_text())
    ru = json.loads((I18N / "ru.json").read_text())
    found: list[str] = []

    def walk(a: object, b: object) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key, value in a.items():
                walk(value, b.get(key))
        elif isinstance(a, str) and a != b:
            for piece in re.split(r"\{\w+\}", a):
                piece = piece.strip(" .,:;!?()…—-")
                if len(piece) >= 4 and re.search(r"[A-Za-z]{3}", piece):
                    found.append(piece)

    walk(en, ru)
    return sorted(set(found), key=len, reverse=True)


def latin_in_russian() -> set[str]:
    """Latin words the Russian catalog itself uses (Git, CI, YAML, Moorage): not leaks."""
    values: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, str):
            values.append(node)

    walk(json.loads((I18N / "ru.json").read_text()))
    return set(re.findall(r"(?<![\w-])[A-Za-z][A-Za-z'-]{2,}(?![\w-])", " ".join(values)))


def english_left(text: str, allowed: set[str]) -> list[str]:
    """English catalog messages, or English words outside `allowed`, in a page's text."""
    leaks = [
        m
        for m in english_messages()
        if m not in allowed and re.search(rf"(?<!\w){re.escape(m)}(?!\w)", text)
    ]
    # Whole Latin words only: the letters inside ids and hashes (dp_3fa9bcc1) are not words.
    words = set(re.findall(r"(?<![\w-])[A-Za-z][A-Za-z'-]{2,}(?![\w-])", text)) - allowed
    return leaks + sorted(words)
