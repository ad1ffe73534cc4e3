"""Every text field of every request body, and every path and query parameter, taken from
the server's own OpenAPI document, with a NUL, a lone surrogate, a line break, a bidi
override (Trojan Source) and a zero-width space (where the field does not take one):
422 ``invalid_text``, never a 500, nothing stored.

On SQLite (the session's server) and on PostgreSQL (a server of this module's own),
which cannot store a NUL at all. A new route or field is covered without a change here;
``x-moorage-text`` in the document says which fields take line breaks (see
``moorage/text.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import Api, Server, admin_api, start_server, stop_server, unique

# The module's own server is made once per worker that runs one of its tests: one worker.
pytestmark = pytest.mark.xdist_group("text_fields")

PG_URL = os.environ.get("MOORAGE_TEST_DATABASE_URL")
SCHEMA_KEY = "x-moorage-text"
NUL, SURROGATE, NEWLINE, ESC = "\x00", "\ud800", "\n", "\x1b"
RLO, ZWSP = "\u202e", "\u200b"  # a bidi override; an invisible format character (Cf)
# What each rule refuses, besides a NUL and a lone surrogate (refused everywhere).
# Bodies whose fields are all flags or numbers: nothing to send a control character in.
NO_TEXT = {("POST", "/api/workloads/{workload_id}/deployments/{deployment_id}/rollback")}
ALSO_REFUSED = {"line": [NEWLINE, ESC, RLO, ZWSP], "multiline": [ESC, RLO], "opaque": []}
# Keys of a bare JSON map that a service checks itself, with the code it answers.
CHECKED_BY_SERVICE = {("PUT", "/api/workloads/{workload_id}/env"): "invalid_env"}


@dataclass
class Target:
    name: str
    url: str
    admin: Api
    ids: dict[str, str]


def make_targets(name: str, url: str, admin: Api) -> Target:
    """Real objects, so that a refusal is about the text and never a 404."""
    slug = unique("txt")
    with admin.client() as api:
        assert api.post("/api/projects", json={"slug": slug}).status_code == 201
        body = {
            "name": unique("w"),
            "kind": "image",
            "project": slug,
            "stage": "production",
            "config": {"image": "moorage-test/httpd:1"},
        }
        r = api.post("/api/workloads", json=body)
        assert r.status_code == 201, r.text
        workload = r.json()["id"]
        r = api.post("/api/triggers", json={"kind": "webhook", "name": unique("txt"), "config": {}})
        assert r.status_code == 201, r.text
        trigger = r.json()
    ids = {
        "slug": slug,
        "workload_id": workload,
        "trigger_id": trigger["id"],
        "token": trigger["token"],
        "deployment_id": "dp_missing",
        "snapshot_id": "sn_missing",
        "restore_id": "rs_missing",
        "token_id": "tk_missing",
        "user_id": "us_missing",
        "key": "MISSING",
        "target_id": "st_missing",
        "point_id": "rp_missing",
        "drill_id": "dr_missing",
        "name": "no-such-provider",
    }
    return Target(name, url, admin, ids)


@pytest.fixture(scope="module")
def postgres_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if not PG_URL:
        pytest.skip("MOORAGE_TEST_DATABASE_URL not set")
    database = f"moorage_text_{os.getpid()}"
    admin_engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        conn.execute(text(f"CREATE DATABASE {database}"))
    url = make_url(PG_URL).set(database=database).render_as_string(hide_password=False)
    proc, server_url, env = start_server(
        tmp_path_factory.mktemp("text-pg") / "var", {"MOORAGE_DATABASE_URL": url}
    )
    try:
        yield make_targets("postgres", server_url, admin_api(server_url, env))
    finally:
        stop_server(proc)
        with admin_engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin_engine.dispose()


@pytest.fixture(scope="module")
def sqlite_target(server: Server) -> Target:
    return make_targets("sqlite", server.url, server.admin)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest) -> Target:
    return request.getfixturevalue(f"{request.param}_target")  # type: ignore[no-any-return]


# --- the OpenAPI document ----------------------------------------------------------------


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in sorted(doc["paths"].items()):
        for method, op in sorted(ops.items()):
            yield method.upper(), path, op


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:  # X | None: take X
        inner = next(s for s in schema["anyOf"] if s.get("type") != "null")
        merged = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**resolve(doc, inner), **merged}
    return schema


@dataclass
class Leaf:
    """One text field of a body: where it sits, and the rule it follows."""

    where: tuple[str | int, ...]
    rule: str
    is_key: bool = False
    enum: bool = False


def sample(
    doc: dict[str, Any],
    schema: dict[str, Any],
    rule: str,
    where: tuple[Any, ...],
    leaves: list[Leaf],
) -> Any:
    """A value the field's own validation accepts, noting every text leaf in it."""
    schema = resolve(doc, schema)
    explicit = SCHEMA_KEY in schema
    rule = schema.get(SCHEMA_KEY, rule)
    kind = schema.get("type")
    if "enum" in schema:
        leaves.append(Leaf(where, rule, enum=True))
        return schema["enum"][0]
    if kind == "string" and schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"  # parsed, not text: a bad one is invalid_request
    if kind == "string":
        leaves.append(Leaf(where, rule))
        return "x" * max(1, schema.get("minLength", 1))  # long enough to pass on its own
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return [sample(doc, schema.get("items", {"type": "string"}), rule, (*where, 0), leaves)]
    if kind == "object" or "properties" in schema:
        value: dict[str, Any] = {}
        for name, prop in schema.get("properties", {}).items():
            # A field's rule covers what it holds (the server walks a nested plain model
            # by it); a nested body's own fields say theirs.
            value[name] = sample(doc, prop, rule if explicit else "line", (*where, name), leaves)
        extra = schema.get("additionalProperties")
        if extra:  # a map: its key is text too, and a free-form value holds strings
            leaves.append(Leaf((*where, "k"), "line", is_key=True))
            item = {"type": "string"} if extra is True else extra
            value["k"] = sample(doc, item, rule, (*where, "k"), leaves)
        return value
    return "x"


def with_text(body: Any, leaf: Leaf, bad: str) -> Any:
    """A copy of ``body`` whose leaf holds ``bad``."""
    body = json.loads(json.dumps(body))
    *parents, last = leaf.where
    holder = body
    for step in parents:
        holder = holder[step]
    if leaf.is_key:
        holder[f"k{bad}"] = holder.pop(last)
    else:  # as long as the sample, so a minimum length is not what refuses it
        holder[last] = f"a{bad}" + "b" * max(1, len(str(holder[last])) - 1)
    return body


def fill(path: str, ids: dict[str, str], override: dict[str, str] | None = None) -> str:
    values = {**ids, **(override or {})}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


# --- what must not change ----------------------------------------------------------------


def state(target: Target) -> dict[str, Any]:
    wid, tid, slug = (target.ids[k] for k in ("workload_id", "trigger_id", "slug"))
    with target.admin.client() as api:
        return {
            "projects": api.get("/api/projects").json(),
            "project": api.get(f"/api/projects/{slug}").json(),
            "workloads": api.get("/api/workloads").json(),
            "env": api.get(f"/api/workloads/{wid}/env").json(),
            "volumes": api.get(f"/api/workloads/{wid}/volumes").json(),
            "chain": api.get(f"/api/workloads/{wid}/chain").json(),
            "bindings": api.get(f"/api/workloads/{wid}/triggers").json(),
            "triggers": api.get("/api/triggers").json(),
            "deliveries": api.get(f"/api/triggers/{tid}/deliveries").json(),
            "users": api.get("/api/users").json(),
            "audit": api.get("/api/audit", params={"limit": 1}).json(),
        }


def refused(r: httpx.Response, codes: set[str], what: str) -> None:
    assert r.status_code == 422, (what, r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] in codes, (what, error)
    assert "Traceback" not in r.text
    assert not {"\x00", RLO, ZWSP, "\ufeff"} & set(r.text), r.text  # named, never echoed


# --- the tests ---------------------------------------------------------------------------


def test_every_text_field_of_every_body_refuses_control_characters(target: Target) -> None:
    doc = httpx.get(f"{target.url}/api/openapi.json").json()
    before = state(target)
    checked = 0
    with target.admin.client() as api:
        for method, path, op in operations(doc):
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            leaves: list[Leaf] = []
            body = sample(doc, content["application/json"]["schema"], "line", (), leaves)
            if (method, path) in NO_TEXT:
                assert not leaves, f"{method} {path} has text fields now: take it off NO_TEXT"
                continue
            assert leaves, (method, path)
            url = fill(path, target.ids)
            for leaf in leaves:
                for bad in [NUL, SURROGATE, *ALSO_REFUSED[leaf.rule]]:
                    payload = json.dumps(with_text(body, leaf, bad))  # ASCII: \\u escapes
                    r = api.request(
                        method, url, content=payload, headers={"Content-Type": "application/json"}
                    )
                    codes = {"invalid_text"}
                    if leaf.enum:
                        codes.add("invalid_request")  # the field's own choices refuse it first
                    if leaf.is_key and (method, path) in CHECKED_BY_SERVICE:
                        codes = {CHECKED_BY_SERVICE[(method, path)]}
                    refused(r, codes, (method, path, leaf.where, repr(bad)))
                    checked += 1
    assert checked > 60
    assert state(target) == before


def test_a_data_field_keeps_its_line_breaks(target: Target) -> None:
    """Where a line break is data (a description, an env value), it is stored as sent."""
    slug = target.ids["slug"]
    wid = target.ids["workload_id"]
    with target.admin.client() as api:
        r = api.patch(f"/api/projects/{slug}", json={"description": "one\nline\tand\r\nmore"})
        assert r.status_code == 200, r.text
        assert api.get(f"/api/projects/{slug}").json()["description"] == "one\nline\tand\r\nmore"
        value = "line one\nline two\t\x1b[1mbold\x1b[0m"
        r = api.put(f"/api/workloads/{wid}/env", json={"MULTI": {"value": value}})
        assert r.status_code == 200, r.text
        assert api.get(f"/api/workloads/{wid}/env/MULTI").json()["value"] == value
        assert api.put(f"/api/workloads/{wid}/env", json={}).status_code == 200


def test_prose_keeps_invisible_joiners_but_no_bidi_control(target: Target) -> None:
    """A description may hold a ZWJ (it joins an emoji) and a zero-width space, never a
    bidi control; an env value (opaque) is handed on as sent, bidi controls and all."""
    slug, wid = target.ids["slug"], target.ids["workload_id"]
    prose = "team \U0001f469\u200d\U0001f4bb, soft\u200bbreak"
    with target.admin.client() as api:
        r = api.patch(f"/api/projects/{slug}", json={"description": prose})
        assert r.status_code == 200, r.text
        assert api.get(f"/api/projects/{slug}").json()["description"] == prose
        r = api.patch(f"/api/projects/{slug}", json={"description": f"ok {RLO}kcatta"})
        refused(r, {"invalid_text"}, "description")
        assert "U+202E (a bidi control)" in r.json()["error"]["message"]
        assert api.get(f"/api/projects/{slug}").json()["description"] == prose
        value = f"shalom {RLO}\u2066x\u2069\u200f"
        r = api.put(f"/api/workloads/{wid}/env", json={"RTL": {"value": value}})
        assert r.status_code == 200, r.text
        assert api.get(f"/api/workloads/{wid}/env/RTL").json()["value"] == value
        assert api.put(f"/api/workloads/{wid}/env", json={}).status_code == 200
        assert api.patch(f"/api/projects/{slug}", json={"description": ""}).status_code == 200


def test_a_bidi_control_in_a_volume_is_refused_and_no_host_path_made(target: Target) -> None:
    """The report: ``PUT .../volumes`` with ``source: "\\u202eabc"`` and
    ``target: "/data\\u202e"`` answered 200 and derived a host path holding U+202E."""
    wid = target.ids["workload_id"]
    with target.admin.client() as api:
        before = api.get(f"/api/workloads/{wid}/volumes").json()
        for volume, field in (
            ({"source": f"{RLO}abc"}, "source"),
            ({"target": f"/data{RLO}"}, "target"),
            ({"name": f"da{ZWSP}ta"}, "name"),
            ({"source": "da\ufeffta", "target": f"/da{ZWSP}ta"}, "source"),
        ):
            plain = {"name": "data", "scope": "stage", "source": "data", "target": "/data"}
            r = api.put(f"/api/workloads/{wid}/volumes", json=[{**plain, **volume}])
            refused(r, {"invalid_text"}, volume)
            assert [d["field"] for d in r.json()["error"]["details"]] == [f"0.{field}"], r.text
        assert api.get(f"/api/workloads/{wid}/volumes").json() == before


def test_every_path_and_query_parameter_refuses_control_characters(target: Target) -> None:
    doc = httpx.get(f"{target.url}/api/openapi.json").json()
    before = state(target)
    checked = 0
    anonymous = httpx.Client(base_url=target.url, timeout=30)
    with target.admin.client() as api, anonymous:
        for method, path, op in operations(doc):
            for param in op.get("parameters", []):
                schema = resolve(doc, param["schema"])
                for bad in (NUL, NEWLINE, "\r", ESC, "\x7f", "\x85", RLO, ZWSP, "\ufeff"):
                    what = (method, path, param["name"], repr(bad))
                    if param["in"] == "path":
                        url = fill(path, target.ids, {param["name"]: "a" + quote(bad) + "b"})
                        for client in (api, anonymous):  # refused before any credential
                            refused(client.request(method, url), {"invalid_text"}, what)
                            checked += 1
                    elif param["in"] == "query":
                        url = fill(path, target.ids)
                        r = api.request(method, url, params={param["name"]: f"a{bad}b"})
                        refused(r, {"invalid_text"}, what)
                        checked += 1
                if param["in"] == "query" and schema.get("type") == "integer":
                    for huge in (10**30, -(10**30), 2**63):
                        r = api.request(
                            method, fill(path, target.ids), params={param["name"]: huge}
                        )
                        refused(r, {"invalid_request"}, (method, path, param["name"], huge))
    assert checked > 100
    assert state(target) == before


def test_a_nul_on_the_public_routes_is_422_not_500(target: Target) -> None:
    """The issue's reproductions: ``POST /hooks/a%00b`` and a login with a NUL."""
    with httpx.Client(base_url=target.url, timeout=30) as anonymous:
        refused(anonymous.post("/hooks/a%00b", content=b"{}"), {"invalid_text"}, "hook")
        for body in ({"username": "a\x00b", "password": "x"}, {"username": "admin\n"}):
            body.setdefault("password", "whatever")
            r = anonymous.post(
                "/api/session",
                content=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            refused(r, {"invalid_text"}, body)
        r = anonymous.post(
            "/api/session",
            content=json.dumps({"username": "nobody", "password": "pass\x00word"}),
            headers={"Content-Type": "application/json"},
        )
        refused(r, {"invalid_text"}, "password")
