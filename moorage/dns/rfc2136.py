"""The ``rfc2136`` DNS kind: dynamic updates (RFC 2136) signed with TSIG (RFC 8945) to a
primary server such as BIND, through dnspython (no hand-written DNS wire code)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any, ClassVar

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.resolver
import dns.tsig
import dns.tsigkeyring
import dns.update
from pydantic import BaseModel, Field, SecretStr, field_validator

from moorage.plugins.spec import DnsError, DnsZone

TIMEOUT = 10.0
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def server_address(value: str) -> tuple[str, int]:
    """``(ip, port)`` of a server given as ``IP[:PORT]`` or ``[IPv6]:PORT`` (53 when no
    port); ValueError otherwise. An address, not a name: dnspython's queries take one."""
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{value!r} is not [IPv6]:port")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address with an optional port, as in 192.0.2.53:53 or "
            "[2001:db8::53]:53"
        ) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port must be 1-65535, as in 192.0.2.53:53")
    return host, int(port)


def _dns_name(value: str) -> str:
    """``value`` when it is a DNS name of letters, digits, ``-`` and ``_`` (RFC 1035 with
    the underscore TSIG key names use), a trailing dot allowed; ValueError otherwise."""
    labels = value.rstrip(".").split(".")
    if not value or len(value) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{value!r} is not a DNS name like example.org")
    return value


class Rfc2136Config(BaseModel):
    model_config = {"extra": "forbid"}
    server: str = Field(
        max_length=255,
        description="the primary server's IP address, with :port (53 when none)",
    )
    zone: str = Field(max_length=253, description="the zone the records live in")
    key_name: str = Field(max_length=253, description="the TSIG key's name")
    key_secret: SecretStr = Field(description="the TSIG key's secret, base64")
    key_algorithm: str = Field(default="hmac-sha256", pattern=r"^hmac-sha(1|224|256|384|512)$")

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        server_address(value)
        return value

    @field_validator("zone", "key_name")
    @classmethod
    def _names(cls, value: str) -> str:
        return _dns_name(value)

    @field_validator("key_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the TSIG secret must be base64, as tsig-keygen prints it") from None
        if not raw:
            raise ValueError("the TSIG secret is empty")
        return value


class Rfc2136Zone:
    """A zone updated over TCP with TSIG-signed UPDATE messages."""

    def __init__(self, config: Rfc2136Config) -> None:
        self.host, self.port = server_address(config.server)
        self.origin = dns.name.from_text(config.zone)
        self.keyring = dns.tsigkeyring.from_text(
            {config.key_name: (config.key_algorithm, config.key_secret.get_secret_value())}
        )
        self.key_name = dns.name.from_text(config.key_name)
        self.algorithm = dns.name.from_text(config.key_algorithm)

    def _relative(self, name: str) -> dns.name.Name:
        absolute = dns.name.from_text(name)
        if not absolute.is_subdomain(self.origin):
            raise DnsError(f"{name} is not in the zone {self.origin.to_text()}")
        return absolute.relativize(self.origin)

    def _send(self, update: dns.update.UpdateMessage) -> None:
        try:
            answer = dns.query.tcp(update, self.host, port=self.port, timeout=TIMEOUT)
        except dns.tsig.PeerError as exc:
            raise DnsError(f"the DNS server refused the TSIG key: {exc}") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsError(
                f"the DNS server {self.host}:{self.port} did not answer: {exc}"
            ) from None
        if answer.rcode() != dns.rcode.NOERROR:
            raise DnsError(
                f"the DNS server refused the update: {dns.rcode.to_text(answer.rcode())}"
            )

    def _update(self) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(
            self.origin, keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.algorithm
        )

    def _rdata(self, rtype: str, value: str) -> str:
        return f'"{value}"' if rtype == "TXT" else value

    def add(self, name: str, rtype: str, value: str, ttl: int) -> None:
        """RFC 2136 §2.5.1 "add to an RRset": the name's other records stay."""
        update = self._update()
        update.add(self._relative(name), ttl, rtype, self._rdata(rtype, value))
        self._send(update)

    def remove(self, name: str, rtype: str, value: str) -> None:
        """RFC 2136 §2.5.4 "delete an RR from an RRset": only the one of ``value``."""
        update = self._update()
        update.delete(self._relative(name), rtype, self._rdata(rtype, value))
        self._send(update)

    def lookup(self, name: str, rtype: str) -> list[str]:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.port
        try:
            answer = resolver.resolve(name, rtype, lifetime=TIMEOUT, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except dns.exception.DNSException as exc:
            raise DnsError(f"could not look {name} up: {exc}") from None
        return [r.to_text().strip('"') for r in answer.rrset or []]


class Rfc2136Dns:
    kind: ClassVar[str] = "rfc2136"
    config_model: ClassVar[type[BaseModel]] = Rfc2136Config
    description: ClassVar[str] = "A primary DNS server taking dynamic updates signed with TSIG"

    def open(self, config: dict[str, Any]) -> DnsZone:
        return Rfc2136Zone(Rfc2136Config.model_validate(config))
