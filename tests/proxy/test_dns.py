"""DNS providers against the real BIND of scripts/bind.sh (SPEC section 12): a domain
that names an ``rfc2136`` provider gets its A record (read back with dnspython) and loses
it with the domain; records Moorage did not write stay through both; only an admin names
a provider; a wildcard domain gets a certificate from pebble by DNS-01."""

from __future__ import annotations

import os
import ssl
from typing import Any

import dns.rdatatype
import dns.resolver
import httpx
import pytest

from moorage.plugins.spec import DnsZone
from tests.conftest import Server, assert_error
from tests.integration.helpers import deploy
from tests.proxy.conftest import pebble_roots, through_proxy, wait_for, web_workload

# One worker runs every proxy test: they share one Caddy on the fixed ports pebble
# validates on (58001/58002), which two workers cannot both hold.
pytestmark = pytest.mark.xdist_group("proxy")


def bind_addresses(name: str, parts: dict[str, str]) -> list[str]:
    host, port = parts["MOORAGE_TEST_DNS_SERVER"].rsplit(":", 1)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    try:
        answer = resolver.resolve(name, "A", lifetime=5, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    return sorted(r.to_text() for r in answer.rrset or [] if r.rdtype == dns.rdatatype.A)


def put_bind_provider(server: Server, parts: dict[str, str], name: str = "bind") -> None:
    config = {
        "server": parts["MOORAGE_TEST_DNS_SERVER"],
        "zone": "moorage.test",
        "key_name": parts["MOORAGE_TEST_TSIG_NAME"],
        "key_secret": parts["MOORAGE_TEST_TSIG_SECRET"],
    }
    r = server.admin.put(f"/api/dns-providers/{name}", json={"kind": "rfc2136", "config": config})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["key_secret"] == "**********"
    assert parts["MOORAGE_TEST_TSIG_SECRET"] not in r.text


def zone_of(parts: dict[str, str]) -> DnsZone:
    """The test's own client of BIND's zone: "someone else" writing records there."""
    from moorage.dns.rfc2136 import Rfc2136Dns

    return Rfc2136Dns().open(
        {
            "server": parts["MOORAGE_TEST_DNS_SERVER"],
            "zone": "moorage.test",
            "key_name": parts["MOORAGE_TEST_TSIG_NAME"],
            "key_secret": parts["MOORAGE_TEST_TSIG_SECRET"],
        }
    )


def domain_status(server: Server, workload_id: str, host: str) -> dict[str, Any]:
    items = server.viewer.get(f"/api/workloads/{workload_id}/domains").json()["items"]
    return next(d["status"] for d in items if d["host"] == host)


def test_rfc2136_keeps_the_a_record_and_deletes_it_with_the_domain(
    proxy_server: Server, proxy_project: str, parts: dict[str, str]
) -> None:
    put_bind_provider(proxy_server, parts)
    assert_error(
        proxy_server.operator.put("/api/dns-providers/x", json={"kind": "rfc2136", "config": {}}),
        403,
    )
    host = f"rec{os.getpid()}.moorage.test"
    assert bind_addresses(host, parts) == []
    w = web_workload(proxy_server, proxy_project)
    items = [{"host": host, "port": 8080, "tls": "off", "dns_provider": "bind"}]
    # An operator may not point the admin's zone anywhere: refused, nothing written.
    audit_before = proxy_server.admin.get("/api/audit", params={"limit": 200}).json()
    for wanted in (items, [{**items[0], "host": "*.op.moorage.test"}]):
        r = proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=wanted)
        assert_error(r, 403, "dns_needs_admin")
    assert proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"] == []
    assert proxy_server.admin.get("/api/audit", params={"limit": 200}).json() == audit_before
    r = proxy_server.admin.put(f"/api/workloads/{w['id']}/domains", json=items)
    assert r.status_code == 200, r.text
    wait_for(lambda: bind_addresses(host, parts) == ["127.0.0.1"], 30, "the A record in BIND")
    assert bind_addresses("op.moorage.test", parts) == []
    wait_for(
        lambda: domain_status(proxy_server, w["id"], host)["dns_state"] == "present",
        30,
        "dns_state present",
    )
    shown = proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"][0]
    assert shown["dns_provider"] == "bind"
    # In use: the provider stays.
    assert_error(proxy_server.admin.delete("/api/dns-providers/bind"), 409, "dns_provider_in_use")
    # An operator may resend it unchanged, but not remove it.
    r = proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=items)
    assert r.status_code == 200, r.text
    r = proxy_server.operator.put(f"/api/workloads/{w['id']}/domains", json=[])
    assert_error(r, 403, "dns_needs_admin")
    r = proxy_server.admin.put(f"/api/workloads/{w['id']}/domains", json=[])
    assert r.status_code == 200, r.text
    wait_for(lambda: bind_addresses(host, parts) == [], 30, "the A record to go")
    wait_for(
        lambda: proxy_server.admin.delete("/api/dns-providers/bind").status_code == 204,
        30,
        "the provider to be free (its record deleted)",
    )


def test_records_moorage_did_not_write_survive_the_domain_and_its_removal(
    proxy_server: Server, proxy_project: str, parts: dict[str, str]
) -> None:
    """The attacker pass's repro on BIND: the zone's own records at a domain's name (and
    at a wildcard) are a conflict, left as they were through addition and removal."""
    put_bind_provider(proxy_server, parts, "bind-own")
    zone = zone_of(parts)
    pid = os.getpid()
    theirs = {f"www{pid}.moorage.test": "203.0.113.10", f"*.w{pid}.moorage.test": "203.0.113.12"}
    fresh = f"fresh{pid}.moorage.test"
    for name, address in theirs.items():
        zone.add(name, "A", address, 300)
    try:
        w = web_workload(proxy_server, proxy_project)
        items = [
            {"host": name, "port": 8080, "tls": "off", "dns_provider": "bind-own"}
            for name in [*theirs, fresh]
        ]
        r = proxy_server.admin.put(f"/api/workloads/{w['id']}/domains", json=items)
        assert r.status_code == 200, r.text
        wait_for(lambda: bind_addresses(fresh, parts) == ["127.0.0.1"], 30, "the fresh record")
        for name, address in theirs.items():
            status = wait_for(
                lambda name=name: (
                    (st := domain_status(proxy_server, w["id"], name))["dns_state"] == "conflict"
                    and st
                ),
                30,
                f"{name} in conflict",
            )
            assert address in status["dns_error"] and "did not create" in status["dns_error"]
            assert bind_addresses(name, parts) == [address]
        r = proxy_server.admin.put(f"/api/workloads/{w['id']}/domains", json=[])
        assert r.status_code == 200, r.text
        wait_for(lambda: bind_addresses(fresh, parts) == [], 30, "Moorage's own record to go")
        for name, address in theirs.items():
            assert bind_addresses(name, parts) == [address]
    finally:
        for name, address in theirs.items():
            zone.remove(name, "A", address)


def test_a_wildcard_domain_gets_a_dns01_certificate_from_pebble(
    proxy_server: Server, proxy_project: str, parts: dict[str, str]
) -> None:
    put_bind_provider(proxy_server, parts, "bind-wild")
    w = web_workload(proxy_server, proxy_project)
    assert deploy(proxy_server.operator, w["id"])["status"] == "succeeded"
    items = [{"host": "*.wild.moorage.test", "port": 8080, "dns_provider": "bind-wild"}]
    r = proxy_server.admin.put(f"/api/workloads/{w['id']}/domains", json=items)
    assert r.status_code == 200, r.text
    trusted = ssl.create_default_context(cadata=pebble_roots(parts))
    with httpx.Client(verify=trusted, timeout=30) as client:

        def answered() -> httpx.Response | None:
            try:
                return through_proxy(client, "any.wild.moorage.test")
            except httpx.HTTPError:
                return None

        r = wait_for(answered, 150, "HTTPS under a wildcard certificate pebble issued")
        assert r.text == "hello from v1\n"
        # the same certificate serves every name under the wildcard
        assert through_proxy(client, "other.wild.moorage.test").text == "hello from v1\n"
    shown = wait_for(
        lambda: proxy_server.viewer.get(f"/api/workloads/{w['id']}/domains").json()["items"][0][
            "status"
        ]["certificate_issuer"],
        60,
        "the certificate in the status",
    )
    assert "Pebble" in shown
    assert proxy_server.admin.put(f"/api/workloads/{w['id']}/domains", json=[]).status_code == 200


def test_rfc2136_refusals_are_dns_errors(parts: dict[str, str]) -> None:
    import base64

    import pytest

    from moorage.dns.rfc2136 import Rfc2136Dns
    from moorage.plugins.spec import DnsError

    good = {
        "server": parts["MOORAGE_TEST_DNS_SERVER"],
        "zone": "moorage.test",
        "key_name": parts["MOORAGE_TEST_TSIG_NAME"],
        "key_secret": parts["MOORAGE_TEST_TSIG_SECRET"],
    }
    wrong = {**good, "key_secret": base64.b64encode(b"not the key at all, 32 bytes!!!").decode()}
    with pytest.raises(DnsError, match="refused the TSIG key"):
        Rfc2136Dns().open(wrong).add(f"bad{os.getpid()}.moorage.test", "A", "127.0.0.1", 60)
    assert bind_addresses(f"bad{os.getpid()}.moorage.test", parts) == []
    with pytest.raises(DnsError, match="not in the zone"):
        Rfc2136Dns().open(good).add("app.example.com", "A", "127.0.0.1", 60)
    closed = {**good, "server": "127.0.0.1:9"}
    with pytest.raises(DnsError, match="did not answer"):
        Rfc2136Dns().open(closed).remove("x.moorage.test", "A", "127.0.0.1")
