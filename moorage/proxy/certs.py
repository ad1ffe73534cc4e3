"""The certificate the proxy serves for a host, read back by a TLS handshake with that
host's name (SNI) on the proxy's HTTPS address: what a client would see, whichever
issuer (ACME, Caddy's internal CA, a loaded DNS-01 wildcard) made it."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class ServedCert:
    issuer: str
    """The issuer's common name (e.g. ``Pebble Intermediate CA 1a2b3c``)."""
    not_after: datetime

    def days_left(self, now: datetime | None = None) -> float:
        return (self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400


def probe_name(host: str) -> str:
    """A name to ask for: a wildcard's own label replaced by a plain one."""
    return f"moorage-probe.{host[2:]}" if host.startswith("*.") else host


def served(https_addr: str, host: str, timeout: float = 3.0) -> ServedCert | None:
    """The leaf certificate served for ``host`` at ``https_addr`` (``:443`` means the
    loopback), or None when the handshake fails (no certificate yet). Not verified: this
    reads what is served, it trusts nothing."""
    addr, _, port = https_addr.rpartition(":")
    addr = addr.strip("[]") or "127.0.0.1"
    addr = "127.0.0.1" if addr in ("0.0.0.0", "::") else addr  # noqa: S104 (read, not bind)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((addr, int(port)), timeout=timeout) as sock:
            with ctx.wrap_socket(sock, server_hostname=probe_name(host)) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    if not der:
        return None
    from cryptography import x509  # 15 MiB, loaded when a certificate is first read
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = str(names[0].value) if names else cert.issuer.rfc4514_string()
    return ServedCert(issuer=issuer, not_after=cert.not_valid_after_utc)
