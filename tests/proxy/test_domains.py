"""Domains through a real Caddy run by a real ``moorage serve`` (SPEC section 12):
HTTPS with a certificate pebble issued over ACME, HTTP redirected to HTTPS, Caddy's
internal CA offline, the bad inputs refused with nothing changed."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from tests.conftest import Server, assert_error, create_workload
from tests.integration.helpers import deploy
from tests.proxy.conftest import (
    HTTPS_PORT,
    pebble_roots,
    through_proxy,
    wait_for,
    web_workload,
)

# One worker runs every proxy test: they share one Caddy on the fixed ports pebble
# validates on (58001/58002), which two workers cannot both hold.
pytestmark = pytest.mark.xdist_group("proxy")


def put_domains(server: Server, workload_id: str, items: list[dict[str, Any]]) -> httpx.Response:
    return server.operator.put(f"/api/workloads/{workload_id}/domains", json=items)


def test_acme_domain_answers_over_https_with_a_pebble_certificate(
    proxy_server: Server, proxy_project: str, parts: dict[str, str]
) -> None:
    w = web_workload(proxy_server, proxy_project)
    assert deploy(proxy_server.operator, w["id"])["status"] == "succeeded"
    r = put_domains(proxy_server, w["id"], [{"host": "app.moorage.test", "port": 8080}])
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["tls"] == "acme"
    trusted = ssl.create_default_context(cadata=pebble_roots(parts))
    with httpx.Client(verify=trusted, timeout=30) as client:

        def answered() -> httpx.Response | None:
            try:
                return through_proxy(client, "app.moorage.test")
            except httpx.HTTPError:
                return None  # no certificate yet: pebble is still validating

        r = wait_for(answered, 90, "an HTTPS answer with a certificate pebble issued")
    assert r.status_code == 200
    assert r.text == "hello from v1\n"
    # HTTP redirects to HTTPS, on the proxy's HTTPS port.
    with httpx.Client(timeout=10) as plain:
        r = through_proxy(plain, "app.moorage.test", "/x?y=1", https=False)
    assert r.status_code == 308
    assert r.headers["location"] == f"https://app.moorage.test:{HTTPS_PORT}/x?y=1"
    # The status names pebble as the issuer, and an expiry.
    shown = wait_for(
        lambda: (
            proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"][0][
                "status"
            ]
            if proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"][0][
                "status"
            ]["certificate_issuer"]
            else None
        ),
        60,
        "the certificate in the domain's status",
    )
    assert "Pebble" in shown["certificate_issuer"]
    assert shown["certificate_expires_at"]
    metrics = proxy_server.anonymous.get("/metrics").text
    assert 'moorage_certificate_expiry_days{host="app.moorage.test"}' in metrics
    assert put_domains(proxy_server, w["id"], []).status_code == 200


def test_internal_tls_works_offline_and_off_serves_http(
    proxy_server: Server, proxy_project: str
) -> None:
    w = web_workload(proxy_server, proxy_project)
    assert deploy(proxy_server.operator, w["id"])["status"] == "succeeded"
    items = [
        {"host": "internal.example.internal", "port": 8080, "tls": "internal"},
        {"host": "plain.example.internal", "port": 8080, "tls": "off"},
    ]
    r = put_domains(proxy_server, w["id"], items)
    assert r.status_code == 200, r.text
    # Caddy's own CA: no ACME server is asked (example.internal resolves nowhere).
    with httpx.Client(verify=False, timeout=30) as client:

        def answered() -> httpx.Response | None:
            try:
                return through_proxy(client, "internal.example.internal")
            except httpx.HTTPError:
                return None

        r = wait_for(answered, 60, "an HTTPS answer under Caddy's internal CA")
        assert r.text == "hello from v1\n"
        cert = wait_for(
            lambda: proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"][0][
                "status"
            ]["certificate_issuer"],
            60,
            "the internal certificate in the status",
        )
        assert "Caddy Local Authority" in cert
        r = through_proxy(client, "plain.example.internal", https=False)
    assert r.status_code == 200
    assert r.text == "hello from v1\n"
    assert put_domains(proxy_server, w["id"], []).status_code == 200


def test_bad_domains_are_refused_with_nothing_changed(
    proxy_server: Server, proxy_project: str
) -> None:
    w = web_workload(proxy_server, proxy_project)
    other = web_workload(proxy_server, proxy_project)
    good = {"host": "kept.moorage.test", "port": 8080, "tls": "internal"}
    assert put_domains(proxy_server, w["id"], [good]).status_code == 200
    assert (
        put_domains(proxy_server, other["id"], [{**good, "host": "owned.moorage.test"}]).status_code
        == 200
    )
    cases = [
        ([{"host": "not a name", "port": 8080}], 422, "invalid_domain"),
        ([{"host": "-bad.moorage.test", "port": 8080}], 422, "invalid_domain"),
        ([{"host": "single", "port": 8080}], 422, "invalid_domain"),
        ([{"host": "a" * 64 + ".moorage.test", "port": 8080}], 422, "invalid_domain"),
        ([{"host": "foo.localhost", "port": 8080}], 422, "invalid_domain"),
        ([{"host": "x.moorage.test", "port": 9999}], 422, "port_not_exposed"),
        ([good, {**good}], 422, "invalid_domain"),
        ([{"host": "owned.moorage.test", "port": 8080}], 409, "domain_taken"),
        ([{"host": "*.wild.moorage.test", "port": 8080}], 422, "wildcard_needs_dns"),
        (
            [{"host": "x.moorage.test", "port": 8080, "dns_provider": "nope"}],
            422,
            "dns_provider_unknown",
        ),
        ([{"host": "x.moorage.test", "port": 8080, "tls": "maybe"}], 422, "invalid_request"),
    ]
    audit_before = proxy_server.admin.get("/api/audit", params={"limit": 200}).json()
    for items, status, code in cases:
        error = assert_error(put_domains(proxy_server, w["id"], items), status, code)
        if code == "domain_taken":
            assert error["details"]["workload"] == other["id"]
            assert other["name"] in error["message"]
        shown = proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"]
        assert [d["host"] for d in shown] == ["kept.moorage.test"], items
    assert proxy_server.admin.get("/api/audit", params={"limit": 200}).json() == audit_before
    # a viewer may read but not change
    assert_error(proxy_server.viewer.put(f"/api/workloads/{w['id']}/domains", json=[]), 403)
    # a good change is one audit row naming the hosts
    assert put_domains(proxy_server, w["id"], []).status_code == 200
    assert put_domains(proxy_server, other["id"], []).status_code == 200


def test_a_compose_domain_names_a_service_and_port_its_model_has(
    proxy_server: Server, proxy_project: str
) -> None:
    compose = "services:\n  web:\n    image: moorage-test/httpd:1\n    ports: ['127.0.0.1::8080']\n"
    w = create_workload(proxy_server, proxy_project, kind="compose", config={"compose": compose})
    host = "stack.moorage.test"
    for item, code in (
        ({"service": "nosuch", "port": 8080}, "unknown_service"),
        ({"port": 8080}, "unknown_service"),
        ({"service": "web", "port": 1}, "port_not_exposed"),
    ):
        r = put_domains(proxy_server, w["id"], [{"host": host, "tls": "off", **item}])
        error = assert_error(r, 422, code)
        assert ("nosuch" if item.get("service") == "nosuch" else "web") in error["message"]
    assert proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"] == []
    good = [{"host": host, "tls": "off", "service": "web", "port": 8080}]
    assert put_domains(proxy_server, w["id"], good).status_code == 200
    assert put_domains(proxy_server, w["id"], []).status_code == 200


def test_a_domain_change_is_a_pending_change_until_deployed(
    proxy_server: Server, proxy_project: str
) -> None:
    api = proxy_server.operator
    w = web_workload(proxy_server, proxy_project)
    assert deploy(api, w["id"])["status"] == "succeeded"

    def pending() -> bool:
        return bool(api.get(f"/api/workloads/{w['id']}").json()["pending_changes"])

    assert not pending()
    items = [{"host": f"{w['name']}.example.internal", "port": 8080, "tls": "off"}]
    assert put_domains(proxy_server, w["id"], items).status_code == 200
    assert pending()  # SPEC 9: domains differ from what the last deployment ran
    assert deploy(api, w["id"])["status"] == "succeeded"
    assert not pending()
    assert put_domains(proxy_server, w["id"], items).status_code == 200  # the same list
    assert not pending()
    assert put_domains(proxy_server, w["id"], []).status_code == 200
    assert pending()
