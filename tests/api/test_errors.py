"""Error answers: one JSON shape, the right status, never a stack trace."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Server, assert_error, create_workload, trigger_ids, unique

JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024


def project_exists(server: Server, slug: str) -> bool:
    r = server.viewer.get(f"/api/projects/{slug}")
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"slug": }', b"{'slug': 'x'}", b'{"slug": "x",}', b"not json at all", b"\x00"],
)
def test_malformed_json_is_422_invalid_request(server: Server, raw: bytes) -> None:
    before = server.viewer.get("/api/projects").json()
    r = server.admin.post("/api/projects", content=raw, headers=JSON)
    error = assert_error(r, 422, "invalid_request")
    assert error["details"][0]["message"] == "the body is not valid JSON"
    assert server.viewer.get("/api/projects").json() == before


def test_malformed_json_on_put_and_patch(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    url = f"/api/workloads/{workload['id']}"
    for method, path in (("PATCH", url), ("PUT", f"{url}/env"), ("PUT", f"{url}/volumes")):
        r = server.operator.request(method, path, content=b'{"oops"', headers=JSON)
        assert_error(r, 422, "invalid_request")
    assert server.viewer.get(url).json() == workload


def test_missing_body_is_422(server: Server) -> None:
    assert_error(server.admin.post("/api/projects"), 422, "invalid_request")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/projects", {"slug": "{slug}", "owner": "me"}),
        ("/api/projects", {"slug": "{slug}", "stages": ["a"], "Stages": ["b"]}),
        ("/api/triggers", {"kind": "webhook", "name": "{slug}", "secret": "x"}),
    ],
)
def test_unknown_field_is_422(server: Server, path: str, body: dict[str, Any]) -> None:
    slug = unique("typo")
    body = {k: (v.replace("{slug}", slug) if isinstance(v, str) else v) for k, v in body.items()}
    error = assert_error(server.admin.post(path, json=body), 422, "invalid_request")
    assert error["details"], error
    assert not project_exists(server, slug)
    names = [t["name"] for t in server.viewer.get("/api/triggers").json()["items"]]
    assert slug not in names


def test_unknown_field_in_workload_body(server: Server, project: str) -> None:
    body = {
        "name": unique("w"),
        "kind": "image",
        "project": project,
        "stage": "production",
        "config": {"image": "a/b:1"},
        "replicas": 3,
    }
    error = assert_error(server.operator.post("/api/workloads", json=body), 422, "invalid_request")
    assert [d["field"] for d in error["details"]] == ["replicas"]
    assert server.viewer.get("/api/workloads", params={"project": project}).json() == {"items": []}


def _oversized_project(slug: str, size: int) -> bytes:
    head = f'{{"slug": "{slug}", "description": "'.encode()
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_body_over_one_mib_is_413(server: Server) -> None:
    slug = unique("big")
    body = _oversized_project(slug, MIB + 1)
    error = assert_error(
        server.admin.post("/api/projects", content=body, headers=JSON), 413, "payload_too_large"
    )
    assert error["details"] == {"max_bytes": MIB}
    assert not project_exists(server, slug)


def test_chunked_body_over_one_mib_is_413(server: Server) -> None:
    slug = unique("big")
    body = _oversized_project(slug, 2 * MIB)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    try:
        r = server.admin.post("/api/projects", content=chunks(), headers=JSON)
    except httpx.HTTPError as exc:  # the server may close before reading it all
        pytest.fail(f"no 413 answer: {exc!r}")
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")
    assert not project_exists(server, slug)


def test_headers_past_the_parser_bound_are_refused_unread(server: Server) -> None:
    """An unauthenticated client cannot grow the server's memory with one endless header
    (``/hooks`` is open to anyone): the parser (h11, ``cli/serve.py``) answers 400 past
    16 KiB, before the rest arrives, and the server goes on serving."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /hooks/x HTTP/1.1\r\nHost: x\r\nX-Padding: ")
        answer, cut = b"", False
        try:
            for _ in range(64):  # 4 MiB offered, 64 KiB at a time
                sock.sendall(b"a" * 65536)
        except OSError:
            cut = True  # the server closed the connection: it stopped reading
        sock.settimeout(5)
        try:
            answer = sock.recv(4096)
        except OSError:
            pass  # a server still reading sends nothing: the assertion below fails
    assert answer.startswith(b"HTTP/1.1 400") or cut, answer[:200]
    assert server.anonymous.get("/api/healthz").status_code == 200


def test_body_of_exactly_one_mib_reaches_validation(server: Server) -> None:
    slug = unique("big")
    body = _oversized_project(slug, MIB)
    r = server.admin.post("/api/projects", content=body, headers=JSON)
    error = assert_error(r, 422, "invalid_request")
    assert [d["field"] for d in error["details"]] == ["description"]
    assert not project_exists(server, slug)


@pytest.mark.parametrize(
    "path", ["/api/nothing-here", "/api/workloads/x/nothing", "/hooks", "/api/projects/a/b/c"]
)
def test_unknown_path_is_404_json(server: Server, path: str) -> None:
    # Other paths belong to the web UI's router (tests/web/test_serving.py).
    r = server.admin.get(path)
    assert_error(r, 404, "not_found")
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/projects"),
        ("DELETE", "/api/workloads"),
        ("POST", "/api/healthz"),
        ("PATCH", "/api/audit"),
        ("POST", "/api/workloads/wl_x/env"),
    ],
)
def test_wrong_method_is_405_json(server: Server, method: str, path: str) -> None:
    r = server.admin.request(method, path, json={})
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["content-type"].startswith("application/json")


def test_unauthenticated_is_401_json(server: Server) -> None:
    r = server.anonymous.get("/api/projects")
    assert_error(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    r = server.anonymous.get("/api/projects", headers={"Authorization": "Basic abc"})
    assert_error(r, 401, "invalid_token")


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{",  # not UTF-8
        b"[" * 100_000,  # nesting deeper than the parser's recursion limit
    ],
)
def test_unparseable_bodies_are_400_json(server: Server, raw: bytes) -> None:
    slug_count = len(server.viewer.get("/api/projects").json()["items"])
    r = server.admin.post("/api/projects", content=raw, headers=JSON)
    assert_error(r, 400, "bad_request")
    assert len(server.viewer.get("/api/projects").json()["items"]) == slug_count


def _raw(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": JSON}


def _nasty_requests(workload_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    w = f"/api/workloads/{workload_id}"
    long_source = [{"name": "x", "scope": "stage", "source": "a" * 5000, "target": "/x"}]
    bad_project = {"name": "a", "kind": "image", "project": "x" * 100, "stage": "s", "config": {}}
    return [
        ("POST", "/api/projects", {"json": [1, 2]}),
        ("POST", "/api/projects", {"json": {"slug": None}}),
        ("POST", "/api/projects", {"json": {"slug": 12}}),
        ("POST", "/api/projects", {"json": {"slug": "x\x00y"}}),
        ("POST", "/api/projects", {"content": b'{"slug": "a"}', "headers": {}}),
        ("POST", "/api/projects", {"content": b"{}", "headers": {"Content-Type": "text/plain"}}),
        ("POST", "/api/projects", _raw(b'{"slug": "\\ud800"}')),
        ("PATCH", w, _raw(b'{"config": {"command": ["\\ud800"]}}')),
        ("PATCH", w, _raw(b'{"config": {"\\udc00": 1}}')),
        ("PATCH", w, {"json": {"config": {"stop_timeout": 10**40}}}),
        ("PATCH", w, _raw(b'{"config": {"stop_timeout": NaN}}')),
        ("PATCH", w, _raw(b'{"config": {"stop_timeout": 1e999}}')),
        ("PATCH", w, {"json": {"config": {"health": {"http": "/" + "x" * 5000}}}}),
        ("PUT", f"{w}/env", _raw(b'{"A": {"value": "\\udfff"}}')),
        ("PUT", f"{w}/env", {"json": {"A" * 300: {"value": "x"}}}),
        ("PUT", f"{w}/volumes", {"json": long_source}),
        ("PUT", f"{w}/chain", {"json": {"next": ["x" * 5000]}}),
        ("POST", "/api/triggers", _raw(b'{"kind": "webhook", "name": "t", "config": 7}')),
        ("POST", "/api/workloads", {"json": bad_project}),
        ("GET", "/api/workloads?project=" + "x" * 100, {}),
        ("GET", "/api/workloads/%00", {}),
        ("GET", "/api/workloads/%ED%A0%80", {}),
        ("GET", "/api/audit?limit=-1", {}),
        ("GET", "/api/projects/" + "x" * 5000, {}),
    ]


def test_no_answer_is_a_stack_trace_or_a_500(server: Server, project: str) -> None:
    workload = create_workload(server, project)
    for method, path, kwargs in _nasty_requests(workload["id"]):
        r = server.admin.request(method, path, **kwargs)
        assert "Traceback" not in r.text, (method, path, r.text)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        assert_error(r, r.status_code)
    # None of them changed the workload.
    assert server.viewer.get(f"/api/workloads/{workload['id']}").json() == workload


@pytest.mark.parametrize(
    ("method", "suffix", "raw", "code"),
    [
        ("PATCH", "", b'{"config": {"command": ["\\ud800"]}}', "invalid_text"),
        ("PATCH", "", b'{"config": {"\\udc00": "x"}}', "invalid_text"),
        (
            "POST",
            "/triggers",
            b'{"trigger": {"kind": "webhook", "name": "t", '
            b'"config": {"secret": "\\ud800abcdefgh"}}}',
            "invalid_text",
        ),
        ("PUT", "/env", b'{"A": {"value": "\\ud800"}}', "invalid_text"),
    ],
)
def test_lone_surrogates_are_422_not_500(
    server: Server, workload: dict[str, Any], method: str, suffix: str, raw: bytes, code: str
) -> None:
    url = f"/api/workloads/{workload['id']}{suffix}"
    triggers_before = trigger_ids(server.viewer)
    assert_error(server.operator.request(method, url, **_raw(raw)), 422, code)
    assert server.viewer.get(f"/api/workloads/{workload['id']}").json() == workload
    assert server.operator.get(f"/api/workloads/{workload['id']}/env").json() == {}
    assert server.viewer.get(f"/api/workloads/{workload['id']}/triggers").json() == {"items": []}
    assert trigger_ids(server.viewer) == triggers_before


def test_surrogate_in_a_trigger_secret_is_422(server: Server) -> None:
    name = unique("t")
    raw = (
        b'{"kind": "webhook", "name": "' + name.encode() + b'", '
        b'"config": {"secret": "\\ud800abcdefgh"}}'
    )
    r = server.operator.post("/api/triggers", content=raw, headers=JSON)
    assert_error(r, 422, "invalid_text")
    names = [t["name"] for t in server.viewer.get("/api/triggers").json()["items"]]
    assert name not in names


def test_error_bodies_have_exactly_code_message_details(server: Server) -> None:
    answers = [
        server.admin.get("/api/nowhere"),
        server.admin.request("PUT", "/api/projects"),
        server.anonymous.get("/api/workloads"),
        server.viewer.post("/api/projects", json={"slug": unique("p")}),
        server.admin.post("/api/projects", json={"slug": "Nope"}),
        server.admin.post("/api/projects", content=b"{", headers=JSON),
        server.viewer.get("/api/workloads/wl_missing"),
    ]
    for r in answers:
        body = r.json()
        assert list(body) == ["error"], body
        assert sorted(body["error"]) == ["code", "details", "message"], body
        assert isinstance(body["error"]["code"], str)
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert "Traceback" not in r.text


def test_a_webhook_url_opened_in_a_browser_says_it_takes_post(server: Server) -> None:
    r = server.anonymous.get(f"/hooks/{unique('tok')}")
    error = assert_error(r, 405, "method_not_allowed")
    assert "POST" in error["message"] and r.headers["allow"] == "POST"
