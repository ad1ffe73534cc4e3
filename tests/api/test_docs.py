"""``/api/docs`` works offline: the page and everything it loads come from this server."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from tests.conftest import Server

ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


def test_docs_page_and_its_assets_are_served_from_the_server(server: Server) -> None:
    page = server.anonymous.get("/api/docs")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    urls = ASSET.findall(page.text)
    scripts = [u for u in urls if u.endswith(".js")]
    styles = [u for u in urls if u.endswith(".css")]
    assert scripts and styles, urls
    host = urlsplit(server.url).netloc
    for url in urls:
        absolute = urljoin(server.url + "/api/docs", url)
        assert urlsplit(absolute).netloc == host, f"{url} points off this server"
        r = server.anonymous.get(urlsplit(absolute).path)
        assert r.status_code == 200, (url, r.status_code)
        assert r.content, url
    # Nothing else in the page names another host (the validator badge, a CDN, a favicon).
    assert not re.search(r"https?://", page.text), page.text
    assert "/api/openapi.json" in page.text


def test_the_served_document_is_the_one_the_client_is_generated_from(server: Server) -> None:
    """``/api/openapi.json`` is rendered once and served as those bytes after; every
    answer is the whole document ``moorage openapi`` prints, and HEAD answers too."""
    from moorage.api.app import openapi_document

    first = server.anonymous.get("/api/openapi.json")
    again = server.anonymous.get("/api/openapi.json")
    assert first.status_code == again.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.content == again.content
    assert first.json() == openapi_document()
    head = server.anonymous.request("HEAD", "/api/openapi.json")
    assert head.status_code == 200 and head.content == b""
