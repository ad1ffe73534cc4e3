"""``proxy.caddy_config.build``: the Caddy JSON for a set of routes (pure; the proxy tests
run it on a real Caddy)."""

from __future__ import annotations

from pathlib import Path

from moorage.proxy.caddy_config import HOLD, LoadedCert, ProxyRoute, ProxySite, build

SITE = ProxySite(
    http_addr="127.0.0.1:8080",
    https_addr="127.0.0.1:8443",
    admin_addr="127.0.0.1:2999",
    storage=Path("/data/proxy/storage"),
    acme_directory="https://ca.test/dir",
    acme_email="ops@example.com",
    acme_ca_root=Path("/roots/test.pem"),
)


def test_tls_domains_on_https_redirected_from_http_and_off_domains_on_http_only() -> None:
    config = build(
        SITE,
        [
            ProxyRoute("a.example.com", "127.0.0.1:1001", "acme"),
            ProxyRoute("i.example.com", "127.0.0.1:1002", "internal", redirect_http=False),
            ProxyRoute("o.example.com", "127.0.0.1:1003", "off"),
            ProxyRoute("n.example.com", None, "acme"),
        ],
    )
    assert config["admin"] == {"listen": "127.0.0.1:2999", "config": {"persist": False}}
    http = config["apps"]["http"]
    assert (http["http_port"], http["https_port"]) == (8080, 8443)
    https_routes = {r["match"][0]["host"][0]: r for r in http["servers"]["https"]["routes"]}
    assert sorted(https_routes) == ["a.example.com", "i.example.com", "n.example.com"]
    proxy = https_routes["a.example.com"]["handle"][0]
    assert proxy["upstreams"] == [{"dial": "127.0.0.1:1001"}]
    assert proxy["load_balancing"]["try_duration"] == HOLD
    assert https_routes["n.example.com"]["handle"][0]["status_code"] == 503
    http_routes = {
        r["match"][0]["host"][0]: r["handle"][0] for r in http["servers"]["http"]["routes"]
    }
    assert http_routes["a.example.com"]["status_code"] == 308
    location = http_routes["a.example.com"]["headers"]["Location"][0]
    assert location == "https://{http.request.host}:8443{http.request.uri}"
    assert http_routes["i.example.com"]["handler"] == "reverse_proxy"  # no redirect asked
    assert http_routes["o.example.com"]["handler"] == "reverse_proxy"
    policies = config["apps"]["tls"]["automation"]["policies"]
    acme = next(p for p in policies if p["issuers"][0]["module"] == "acme")
    assert acme["subjects"] == ["a.example.com", "n.example.com"]
    assert acme["issuers"][0] == {
        "module": "acme",
        "ca": "https://ca.test/dir",
        "email": "ops@example.com",
        "trusted_roots_pem_files": ["/roots/test.pem"],
    }
    internal = next(p for p in policies if p["issuers"][0]["module"] == "internal")
    assert internal["subjects"] == ["i.example.com"]
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_loaded_certificates_are_left_out_of_automation() -> None:
    cert = LoadedCert(hosts=("*.w.example.com",), certificate="CERT", key="KEY")
    site = ProxySite(**{**SITE.__dict__, "loaded": (cert,)})
    config = build(site, [ProxyRoute("*.w.example.com", "127.0.0.1:1", "acme")])
    assert config["apps"]["tls"]["certificates"]["load_pem"] == [
        {"certificate": "CERT", "key": "KEY"}
    ]
    assert "automation" not in config["apps"]["tls"]
    server = config["apps"]["http"]["servers"]["https"]
    assert server["automatic_https"]["skip_certificates"] == ["*.w.example.com"]


def test_no_routes_is_a_config_caddy_takes_as_it_is() -> None:
    config = build(SITE, [])
    assert config["apps"]["http"]["servers"]["https"]["routes"] == []
    assert "tls" not in config["apps"]
    redirect_on_443 = ProxySite(**{**SITE.__dict__, "https_addr": ":443"})
    route = build(redirect_on_443, [ProxyRoute("a.example.com", "127.0.0.1:1", "acme")])
    handler = route["apps"]["http"]["servers"]["http"]["routes"][0]["handle"][0]
    assert handler["headers"]["Location"] == ["https://{http.request.host}{http.request.uri}"]
