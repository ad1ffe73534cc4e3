"""The ``cloudflare`` DNS kind against a local HTTP server that speaks the shapes of
Cloudflare's v4 API for the calls the kind makes (no Cloudflare server is reachable
here): list records by type and name, create, delete (only the one value added; a record
of the zone's own stays); ``{"success", "errors",
"result"}`` answers; the API token as a bearer token."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from moorage.dns.cloudflare import CloudflareDns
from moorage.plugins.spec import DnsError, DnsKind

ZONE = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token"


class FakeCloudflare(ThreadingHTTPServer):
    records: dict[str, dict[str, Any]]
    calls: list[tuple[str, str]]


class Handler(BaseHTTPRequestHandler):
    server: FakeCloudflare

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, result: Any = None, errors: list[Any] | None = None) -> None:
        body = json.dumps(
            {"success": status < 400, "errors": errors or [], "messages": [], "result": result}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> str | None:
        url = urlparse(self.path)
        self.server.calls.append((self.command, url.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(403, errors=[{"code": 10000, "message": "Authentication error"}])
            return None
        prefix = f"/client/v4/zones/{ZONE}/dns_records"
        if not url.path.startswith(prefix):
            self._answer(404, errors=[{"code": 7003, "message": "Could not route"}])
            return None
        return url.path[len(prefix) :].lstrip("/")

    def do_GET(self) -> None:
        if self._route() is None:
            return
        query = parse_qs(urlparse(self.path).query)
        found = [
            r
            for r in self.server.records.values()
            if r["type"] == query.get("type", [r["type"]])[0]
            and r["name"] == query.get("name", [r["name"]])[0]
        ]
        self._answer(200, found)

    def do_POST(self) -> None:
        if self._route() is None:
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("type") not in ("A", "AAAA", "TXT") or not body.get("content"):
            self._answer(400, errors=[{"code": 9000, "message": "DNS record type is invalid"}])
            return
        record = {"id": uuid.uuid4().hex, **body}
        self.server.records[record["id"]] = record
        self._answer(200, record)

    def do_DELETE(self) -> None:
        record_id = self._route()
        if record_id is None:
            return
        if self.server.records.pop(record_id, None) is None:
            self._answer(404, errors=[{"code": 81044, "message": "Record does not exist."}])
            return
        self._answer(200, {"id": record_id})


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    server = FakeCloudflare(("127.0.0.1", 0), Handler)
    server.records, server.calls = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def config(fake: FakeCloudflare, token: str = TOKEN) -> dict[str, Any]:
    return {
        "zone_id": ZONE,
        "api_token": token,
        "api_url": f"http://127.0.0.1:{fake.server_address[1]}/client/v4",
    }


def test_cloudflare_is_a_dns_kind() -> None:
    assert isinstance(CloudflareDns(), DnsKind)


def test_add_and_remove_touch_only_the_one_value(fake: FakeCloudflare) -> None:
    zone = CloudflareDns().open(config(fake))
    fake.records["theirs"] = {
        "id": "theirs",
        "type": "A",
        "name": "app.example.com",
        "content": "203.0.113.10",
        "ttl": 300,
    }
    zone.add("app.example.com", "A", "192.0.2.1", 60)
    assert sorted(zone.lookup("app.example.com", "A")) == ["192.0.2.1", "203.0.113.10"]
    zone.add("app.example.com", "A", "192.0.2.1", 60)  # already there: no write
    assert fake.calls[-1][0] == "GET"
    assert len(fake.records) == 2
    zone.add("_acme-challenge.example.com", "TXT", "token", 60)
    zone.remove("app.example.com", "A", "192.0.2.1")
    assert zone.lookup("app.example.com", "A") == ["203.0.113.10"]  # theirs stays
    assert sorted(r["name"] for r in fake.records.values()) == [
        "_acme-challenge.example.com",
        "app.example.com",
    ]
    zone.remove("gone.example.com", "A", "192.0.2.1")  # nothing there: not an error


def test_a_refusal_is_a_dns_error_naming_the_reason(fake: FakeCloudflare) -> None:
    with pytest.raises(DnsError, match="Authentication error"):
        CloudflareDns().open(config(fake, token="wrong")).lookup("app.example.com", "A")
    with pytest.raises(DnsError, match="record type is invalid"):
        CloudflareDns().open(config(fake)).add("app.example.com", "MX", "x", 60)


def test_an_unreachable_api_is_a_dns_error() -> None:
    cfg = {"zone_id": ZONE, "api_token": TOKEN, "api_url": "http://127.0.0.1:9/client/v4"}
    with pytest.raises(DnsError, match="did not answer"):
        CloudflareDns().open(cfg).lookup("app.example.com", "A")
