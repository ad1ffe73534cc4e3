"""The DNS keeper: makes the providers hold what the domains want (SPEC section 12).

Every ``KEEP_SECONDS`` (and soon after ``kick``) it compares the domains that name a
provider (``services.dns_providers.wanted``) with the records Moorage wrote and still
owns (``owned``): a missing or stale one is added (A, or AAAA for an IPv6
MOORAGE_PUBLIC_IP), one no domain wants any more is removed, also after its domain row
is gone. Moorage never replaces or deletes a record it did not write: before adding it
reads the name's records, and another address there makes the domain's ``dns_state``
``conflict`` (the record is left alone, ``dns_error`` says which); removal takes only
the one value Moorage wrote. Otherwise ``dns_state`` is ``present`` or ``error``.
A wildcard domain with ``tls: acme`` gets its certificate by DNS-01 through its provider
(``dns01.obtain``), kept under ``<data>/proxy/certificates/`` and renewed when less than
``RENEW_DAYS`` are left; the router loads those into Caddy. Nothing here is a
request's: a provider that fails is tried again next round.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from moorage.errors import MoorageError
from moorage.plugins.spec import DnsError, DnsKind, DnsZone
from moorage.proxy.caddy_config import LoadedCert
from moorage.services import dns_providers, domains
from moorage.settings import Settings
from moorage.store.db import Database

log = logging.getLogger("moorage.dns")
KEEP_SECONDS = 5.0
RETRY_SECONDS = 60.0
"""A wildcard certificate that failed is asked for again this much later."""
RENEW_DAYS = 30
TTL = 60


class DnsKeeper:
    """See the module docstring. ``on_certs`` gets the wildcard certificates to load."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        kinds: dict[str, DnsKind],
        on_certs: Callable[[list[LoadedCert]], None],
    ) -> None:
        self.settings = settings
        self.db = db
        self.kinds = kinds
        self.on_certs = on_certs
        self.cert_dir = settings.data_dir / "proxy" / "certificates"
        self._failed_at: dict[str, float] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dns", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)

    def kick(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.keep()
            except Exception:  # the loop outlives any one failure; the next round retries
                log.exception("DNS keeping failed")
            self._wake.wait(KEEP_SECONDS)
            self._wake.clear()

    def _zone(self, provider_id: str, zones: dict[str, DnsZone]) -> DnsZone:
        if provider_id not in zones:
            with self.db.session() as s:
                zones[provider_id] = dns_providers.zone(s, self.settings, self.kinds, provider_id)
        return zones[provider_id]

    def keep(self) -> None:
        """One round: records, then wildcard certificates."""
        with self.db.session() as s:
            wanted = dns_providers.wanted(s)
            owned = dns_providers.owned(s)
        zones: dict[str, DnsZone] = {}
        ip = self.settings.public_ip
        rtype = "AAAA" if ip is not None and ":" in ip else "A"
        keep_keys = {(w.host, rtype) for w in wanted} if ip is not None else set()
        blocked: set[str] = set()
        for w in wanted:
            mine = owned.get((w.host, rtype))
            state: str
            error: str | None
            if ip is None:
                state, error = "error", "MOORAGE_PUBLIC_IP is not set: no address to point at"
            elif mine is not None and mine[0] != w.provider_id:
                continue  # moved to another provider: the old record goes first (below)
            else:
                state, error = self._keep_one(w, rtype, ip, mine[1] if mine else None, zones)
            if state != "present":
                blocked.add(w.host)
            with self.db.session() as s:
                domains.set_state(s, w.domain_id, dns_state=state, dns_error=error)
        for (host, kind), (provider_id, address) in owned.items():
            if (host, kind) in keep_keys and any(
                w.host == host and w.provider_id == provider_id for w in wanted
            ):
                continue
            try:
                self._zone(provider_id, zones).remove(host, kind, address)
            except (DnsError, MoorageError) as exc:
                log.warning("could not delete the %s record of %s: %s", kind, host, exc)
                continue
            with self.db.session() as s:
                dns_providers.forget(s, host, kind)
        self._certificates(
            [
                w
                for w in wanted
                if w.host.startswith("*.") and w.tls == "acme" and w.host not in blocked
            ],
            zones,
        )

    def _keep_one(
        self,
        w: dns_providers.Wanted,
        rtype: str,
        ip: str,
        mine: str | None,
        zones: dict[str, DnsZone],
    ) -> tuple[str, str | None]:
        """Point ``w.host`` at ``ip`` without touching a record Moorage did not make.
        ``mine`` is the address of the record Moorage wrote there (``dns_records``).
        Returns (``dns_state``, ``dns_error``): ``present``; ``conflict`` where the zone
        holds another address Moorage did not write (left alone); ``error``."""
        if mine == ip:
            return "present", None
        try:
            zone = self._zone(w.provider_id, zones)
            existing = zone.lookup(w.host, rtype)
            foreign = sorted(v for v in existing if v not in (mine, ip))
            if foreign:
                return "conflict", (
                    f"the zone already has {rtype} {w.host} -> {', '.join(foreign)}, which "
                    "Moorage did not create: it is left alone and this host is not pointed "
                    "here (remove that record at the provider, or use another host)"
                )
            if ip in existing and mine is None:
                # Someone else's record already points here: used as it is, never deleted.
                return "present", None
            zone.add(w.host, rtype, ip, TTL)
            with self.db.session() as s:
                dns_providers.keep(s, w.host, rtype, w.provider_id, ip)
            if mine is not None:
                zone.remove(w.host, rtype, mine)
        except (DnsError, MoorageError) as exc:
            return "error", str(exc)
        return "present", None

    # --- wildcard certificates ------------------------------------------------

    def _path(self, host: str) -> Path:
        return self.cert_dir / f"{host.replace('*', '_wildcard')}.json"

    def _read(self, host: str) -> LoadedCert | None:
        path = self._path(host)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return LoadedCert(hosts=(host,), certificate=data["certificate"], key=data["key"])

    def _certificates(
        self, wildcards: list[dns_providers.Wanted], zones: dict[str, DnsZone]
    ) -> None:
        loaded: list[LoadedCert] = []
        for w in wildcards:
            cert = self._read(w.host)
            if cert is None or _days_left(cert) < RENEW_DAYS:
                if time.monotonic() - self._failed_at.get(w.host, -RETRY_SECONDS) >= RETRY_SECONDS:
                    cert = self._obtain(w, zones) or cert
            if cert is not None:
                loaded.append(cert)
        self.on_certs(loaded)

    def _obtain(self, w: dns_providers.Wanted, zones: dict[str, DnsZone]) -> LoadedCert | None:
        log.info("asking for a certificate for %s by DNS-01", w.host)
        # Imported here: the ACME client (acme, josepy, pyOpenSSL) is needed only by a
        # server with wildcard domains (SPEC section 8: server idle RSS).
        from moorage.dns import dns01

        try:
            chain, key = dns01.obtain(
                self._zone(w.provider_id, zones),
                w.host,
                account_key=self.settings.data_dir / "proxy" / "acme-account.pem",
                directory=self.settings.acme_directory,
                email=self.settings.acme_email,
                ca_root=self.settings.acme_ca_root,
            )
        except (dns01.AcmeFailed, DnsError, MoorageError) as exc:
            self._failed_at[w.host] = time.monotonic()
            log.warning("no certificate for %s: %s", w.host, exc)
            with self.db.session() as s:
                domains.set_state(s, w.domain_id, acme_error=str(exc)[:2000])
            return None
        self.cert_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(w.host)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"certificate": chain, "key": key}))
        tmp.chmod(0o600)
        tmp.replace(path)
        with self.db.session() as s:
            domains.set_state(s, w.domain_id, acme_error=None)
        return LoadedCert(hosts=(w.host,), certificate=chain, key=key)


def _days_left(cert: LoadedCert) -> float:
    from cryptography import x509  # 15 MiB, loaded when a certificate is first read

    leaf = x509.load_pem_x509_certificate(cert.certificate.encode())
    return (leaf.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
