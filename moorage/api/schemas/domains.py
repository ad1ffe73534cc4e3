"""Domains of a workload and the proxy's state (SPEC section 12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from moorage.api.schemas.base import OPAQUE_TEXT, Body


class DomainStatus(BaseModel):
    certificate_issuer: str | None = Field(
        default=None, description="the issuer of the certificate the proxy serves for the host"
    )
    certificate_expires_at: datetime | None = None
    acme_error: str | None = Field(default=None, description="the last ACME error for the host")
    dns_state: str = Field(
        default="", description="'present' or 'error' when a DNS provider keeps the record"
    )
    dns_error: str | None = None


class DomainIn(Body):
    host: str = Field(
        max_length=253,
        description="a DNS name; '*.' and a name for a wildcard (needs dns_provider)",
    )
    port: int = Field(ge=1, le=65535, description="the container port, one the workload publishes")
    service: str | None = Field(
        default=None, max_length=63, description="the compose service (compose workloads)"
    )
    tls: Literal["acme", "internal", "off"] = "acme"
    redirect_http: bool = True
    dns_provider: str | None = Field(
        default=None,
        max_length=63,
        description="a DNS provider's name: Moorage keeps the A/AAAA record at "
        "MOORAGE_PUBLIC_IP and gets wildcard certificates by DNS-01 through it",
    )
    # Read-only fields of DomainOut, accepted and ignored so a GET can be PUT back as is.
    status: DomainStatus | None = Field(
        default=None,
        description="ignored: derived by Moorage",
        json_schema_extra=OPAQUE_TEXT,  # an ACME error read back holds line breaks
    )


class DomainOut(BaseModel):
    host: str
    port: int
    service: str | None
    tls: str
    redirect_http: bool
    dns_provider: str | None
    status: DomainStatus


class DomainList(BaseModel):
    items: list[DomainOut]
    proxy: str = Field(description="'caddy' when Moorage runs the proxy, else 'none'")


class ProxyOut(BaseModel):
    mode: str
    running: bool
    pid: int | None
    starts: int = Field(description="how often Moorage started Caddy (more than 1: restarts)")
    last_error: str | None
    loaded_at: datetime | None
    routes: int


class DnsProviderIn(Body):
    kind: str = Field(max_length=63, description="a moorage.dns kind: rfc2136, cloudflare...")
    config: dict[str, Any] = Field(
        description="the kind's config; a secret given as the mask keeps the stored one"
    )


class DnsProviderOut(BaseModel):
    name: str
    kind: str
    config: dict[str, Any] = Field(description="secrets masked")


class DnsProviderList(BaseModel):
    items: list[DnsProviderOut]
