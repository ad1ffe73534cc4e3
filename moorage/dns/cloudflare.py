"""The ``cloudflare`` DNS kind: Cloudflare's v4 HTTP API through httpx, with an API token
(``Authorization: Bearer``). The calls (developers.cloudflare.com/api, DNS Records for a
Zone): list ``GET /zones/{zone_id}/dns_records?type=&name=``, create ``POST
/zones/{zone_id}/dns_records``, delete ``DELETE /zones/{zone_id}/dns_records/{id}``;
every answer is ``{"success", "errors", "result"}``. No Cloudflare server is reachable
from the tests: they run this against a local server speaking these shapes."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field, SecretStr

from moorage.plugins.spec import DnsError, DnsZone

API = "https://api.cloudflare.com/client/v4"
TIMEOUT = 20.0


class CloudflareConfig(BaseModel):
    model_config = {"extra": "forbid"}
    zone_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="the zone's id (32 hex)")
    api_token: SecretStr = Field(description="an API token allowed to edit the zone's DNS")
    api_url: str = Field(default=API, max_length=255, pattern=r"^https?://")


class CloudflareZone:
    def __init__(self, config: CloudflareConfig) -> None:
        self.base = f"{config.api_url.rstrip('/')}/zones/{config.zone_id}/dns_records"
        self.headers = {"Authorization": f"Bearer {config.api_token.get_secret_value()}"}

    def _call(self, method: str, url: str, **kw: Any) -> Any:
        try:
            r = httpx.request(method, url, headers=self.headers, timeout=TIMEOUT, **kw)
        except httpx.HTTPError as exc:
            raise DnsError(f"Cloudflare's API did not answer: {exc}") from None
        try:
            body = r.json()
        except ValueError:
            raise DnsError(f"Cloudflare's API answered {r.status_code} without JSON") from None
        if r.status_code >= 400 or not body.get("success"):
            errors = "; ".join(str(e.get("message", e)) for e in body.get("errors") or [])
            raise DnsError(
                f"Cloudflare refused {method} ({r.status_code}): {errors or 'no reason'}"
            )
        return body.get("result")

    def _records(self, name: str, rtype: str) -> list[dict[str, Any]]:
        result = self._call("GET", self.base, params={"type": rtype, "name": name})
        return [r for r in result or [] if r.get("name") == name and r.get("type") == rtype]

    def add(self, name: str, rtype: str, value: str, ttl: int) -> None:
        if any(r["content"] == value for r in self._records(name, rtype)):
            return
        body = {"type": rtype, "name": name, "content": value, "ttl": ttl}
        self._call("POST", self.base, json=body)

    def remove(self, name: str, rtype: str, value: str) -> None:
        for record in self._records(name, rtype):
            if record["content"] == value:
                self._call("DELETE", f"{self.base}/{record['id']}")

    def lookup(self, name: str, rtype: str) -> list[str]:
        return [str(r["content"]) for r in self._records(name, rtype)]


class CloudflareDns:
    kind: ClassVar[str] = "cloudflare"
    config_model: ClassVar[type[BaseModel]] = CloudflareConfig
    description: ClassVar[str] = "Cloudflare DNS through its HTTP API, with an API token"

    def open(self, config: dict[str, Any]) -> DnsZone:
        return CloudflareZone(CloudflareConfig.model_validate(config))
