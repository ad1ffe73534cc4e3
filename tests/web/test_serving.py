"""The Python server serves the built UI at / with an SPA fallback, and never shadows the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, assert_error, start_server, stop_server

pytestmark = pytest.mark.usefixtures("web_built")


def test_root_and_client_routes_get_the_app(server: Server) -> None:
    for path in ("/", "/apps", "/apps/wl_123?tab=env", "/settings"):
        r = httpx.get(server.url + path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "<!doctype html>" in r.text.lower()
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"


def test_built_assets_are_served_and_cached_forever(server: Server) -> None:
    index = httpx.get(server.url + "/").text
    start = index.index("/_app/immutable/")
    asset = index[start : index.index('"', start)]
    r = httpx.get(server.url + asset)
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]
    assert httpx.get(server.url + "/favicon.svg").headers["content-type"].startswith("image/svg")


def test_unknown_api_paths_stay_json_errors(server: Server) -> None:
    for path in ("/api/nope", "/api/workloads/x/nope", "/hooks/", "/api"):
        r = httpx.get(server.url + path)
        assert r.status_code in (401, 404), path
        assert_error(r, r.status_code)


def test_no_path_leaves_the_build_directory(server: Server) -> None:
    for raw in (
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc/passwd",
        "/_app/../../pyproject.toml",
    ):
        with httpx.Client(base_url=server.url) as client:
            r = client.send(client.build_request("GET", server.url + raw))
        assert "root:" not in r.text and "[project]" not in r.text, raw


def test_a_missing_build_is_a_clear_json_error(tmp_path: Path) -> None:
    proc, url, _env = start_server(tmp_path / "var", {"MOORAGE_WEB_DIR": str(tmp_path / "none")})
    try:
        error = assert_error(httpx.get(url + "/apps"), 404, "ui_not_built")
        assert "make run" in error["message"]
        assert httpx.get(url + "/api/healthz").status_code == 200
    finally:
        stop_server(proc)
