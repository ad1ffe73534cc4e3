"""Caddy's JSON config for a set of routes: pure, no I/O (SPEC section 12).

Two servers: ``https`` on MOORAGE_PROXY_HTTPS_ADDR carries every domain whose ``tls`` is
not ``off`` (Caddy's automatic HTTPS manages their certificates: the ``acme`` issuer
against MOORAGE_ACME_DIRECTORY, or Caddy's ``internal`` CA), and ``http`` on
MOORAGE_PROXY_HTTP_ADDR redirects those with ``redirect_http`` and proxies the rest.
Every proxy handler retries a refused upstream for ``HOLD`` (``try_duration``): while a
restore swaps volumes or a deploy switches containers, a request waits instead of
getting a 502. Certificates Moorage obtained itself (wildcards by DNS-01) are loaded as
PEM and left out of automation. Caddy JSON reference: caddyserver.com/docs/json/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOLD = "30s"
"""How long a request waits for an upstream that refuses connections (lb_try_duration)."""
HOLD_INTERVAL = "100ms"


@dataclass(frozen=True)
class ProxyRoute:
    """One host and where it goes. ``upstream`` is ``host:port``; None: nothing serves it
    yet (answered 503 by Caddy itself)."""

    host: str
    upstream: str | None
    tls: str  # acme | internal | off
    redirect_http: bool = True


@dataclass(frozen=True)
class LoadedCert:
    """A certificate Moorage obtained itself (a wildcard, by DNS-01), PEM."""

    hosts: tuple[str, ...]
    certificate: str
    key: str


@dataclass(frozen=True)
class ProxySite:
    """Where Caddy listens and which CA it asks."""

    http_addr: str
    https_addr: str
    admin_addr: str
    storage: Path
    acme_directory: str | None = None
    acme_email: str | None = None
    acme_ca_root: Path | None = None
    loaded: tuple[LoadedCert, ...] = field(default=())


def port_of(addr: str) -> int:
    return int(addr.rpartition(":")[2])


def _handler(route: ProxyRoute) -> dict[str, Any]:
    if route.upstream is None:
        return {
            "handler": "static_response",
            "status_code": 503,
            "body": "no container serves this domain yet\n",
        }
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": route.upstream}],
        "load_balancing": {"try_duration": HOLD, "try_interval": HOLD_INTERVAL},
    }


def _route(route: ProxyRoute, handler: dict[str, Any], server: str) -> dict[str, Any]:
    return {
        "@id": f"moorage:{server}:{route.host}",
        "match": [{"host": [route.host]}],
        "handle": [handler],
        "terminal": True,
    }


def _redirect(site: ProxySite) -> dict[str, Any]:
    port = port_of(site.https_addr)
    suffix = "" if port == 443 else f":{port}"
    return {
        "handler": "static_response",
        "status_code": 308,
        "headers": {"Location": [f"https://{{http.request.host}}{suffix}{{http.request.uri}}"]},
    }


def build(site: ProxySite, routes: list[ProxyRoute]) -> dict[str, Any]:
    """The whole config: admin API on loopback (never persisted: Moorage loads it again
    at every start), storage under the data directory, the two servers, the TLS
    automation policies and the loaded certificates."""
    tls_routes = [r for r in routes if r.tls != "off"]
    http_routes = [
        _route(r, _redirect(site) if r.tls != "off" and r.redirect_http else _handler(r), "http")
        for r in routes
    ]
    loaded_hosts = sorted({h for c in site.loaded for h in c.hosts})
    acme_hosts = sorted(
        r.host for r in tls_routes if r.tls == "acme" and r.host not in loaded_hosts
    )
    internal_hosts = sorted(
        r.host for r in tls_routes if r.tls == "internal" and r.host not in loaded_hosts
    )
    acme: dict[str, Any] = {"module": "acme"}
    if site.acme_directory:
        acme["ca"] = site.acme_directory
    if site.acme_email:
        acme["email"] = site.acme_email
    if site.acme_ca_root is not None:
        acme["trusted_roots_pem_files"] = [str(site.acme_ca_root)]
    policies = []
    if acme_hosts:
        policies.append({"subjects": acme_hosts, "issuers": [acme]})
    if internal_hosts:
        policies.append({"subjects": internal_hosts, "issuers": [{"module": "internal"}]})
    tls: dict[str, Any] = {"automation": {"policies": policies}} if policies else {}
    if site.loaded:
        tls["certificates"] = {
            "load_pem": [{"certificate": c.certificate, "key": c.key} for c in site.loaded]
        }
    https_server: dict[str, Any] = {
        "listen": [site.https_addr],
        "routes": [_route(r, _handler(r), "https") for r in tls_routes],
        "automatic_https": {"disable_redirects": True, "skip_certificates": loaded_hosts},
    }
    if loaded_hosts:
        https_server["tls_connection_policies"] = [{}]
    apps: dict[str, Any] = {
        "http": {
            "http_port": port_of(site.http_addr),
            "https_port": port_of(site.https_addr),
            "servers": {
                "https": https_server,
                "http": {"listen": [site.http_addr], "routes": http_routes},
            },
        },
        # Caddy's own CA (tls: internal) never touches the host's trust store.
        "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
    }
    if tls:
        apps["tls"] = tls
    return {
        "admin": {"listen": site.admin_addr, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(site.storage)},
        "logging": {"logs": {"default": {"level": "INFO", "encoder": {"format": "json"}}}},
        "apps": apps,
    }
