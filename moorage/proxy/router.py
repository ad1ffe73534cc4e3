"""The router: keeps Caddy running and its config equal to what the database says
(SPEC section 12).

The database is the source of truth. Every ``TICK`` (and at once after ``kick``) the
router reads the domains (``services.domains.routing``), finds the container each one
goes to, builds Caddy's config (``caddy_config.build``) and loads it when it differs
from what Caddy runs: after a start, after Caddy died and was started again, after a
change made while it was down, after someone changed Caddy by hand. A Caddy that
exits is started again (``RESTART_SECONDS`` apart, doubling up to ``MAX_RESTART_SECONDS``
while it keeps failing to start).

Where a domain goes: the workload's container that ``switch`` named last (a deploy's
new container, once it passed its health check), else the container of the last good
deployment, else (never deployed, or a kind without deployment labels) any running
container of the workload (the compose ``service`` named); never a candidate. Caddy
runs on the host and dials the container's port as published on
MOORAGE_PUBLISH_ADDR (loopback): the engine picks a free port per container, so the old
and the new container of a deploy answer side by side and the switch is one config
load; nothing outside the host needs to reach a bridge address. A domain whose
container is stopped (a restore swapping volumes) keeps its last upstream: Caddy holds
its requests for ``caddy_config.HOLD`` until the container answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moorage import metrics
from moorage.dns import load_kinds
from moorage.dns.keeper import DnsKeeper
from moorage.errors import MoorageError
from moorage.plugins.spec import DnsKind
from moorage.proxy.caddy import CaddyProcess, ProxyError
from moorage.proxy.caddy_config import LoadedCert, ProxyRoute, ProxySite, build
from moorage.proxy.certs import ServedCert, served
from moorage.runtime.engine import (
    LABEL_CANDIDATE,
    LABEL_DEPLOYMENT,
    LABEL_WORKLOAD,
    Container,
    Engine,
)
from moorage.services import domains
from moorage.services.domains import Route
from moorage.settings import Settings
from moorage.store.db import Database

log = logging.getLogger("moorage.proxy")
TICK = 1.0
RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 60.0
"""A Caddy that keeps failing to start (a port it cannot bind) is tried again less often."""
CERT_SECONDS = 30.0
CHECK_SECONDS = 10.0
"""How often Caddy's running config is read back to catch a change made by hand."""
DRAIN_SECONDS = 1.0
"""After a switch, how long the old container keeps serving requests already sent to it."""
COMPOSE_SERVICE = "com.docker.compose.service"


@dataclass
class ProxyStatus:
    """What ``GET /api/proxy`` shows."""

    mode: str
    running: bool = False
    pid: int | None = None
    starts: int = 0
    last_error: str | None = None
    loaded_at: datetime | None = None
    routes: int = 0
    certs: dict[str, ServedCert] = field(default_factory=dict)


class Router:
    """Supervises Caddy and keeps its routes; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        engine: Engine,
        *,
        binary: str = "caddy",
        dns_kinds: dict[str, DnsKind] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.site = ProxySite(
            http_addr=settings.proxy_http_addr,
            https_addr=settings.proxy_https_addr,
            admin_addr=settings.proxy_admin_addr,
            storage=settings.data_dir / "proxy" / "storage",
            acme_directory=settings.acme_directory,
            acme_email=settings.acme_email,
            acme_ca_root=settings.acme_ca_root,
        )
        self.caddy = CaddyProcess(
            binary, settings.proxy_admin_addr, settings.data_dir / "proxy", self._on_log
        )
        self.dns = DnsKeeper(
            settings, db, load_kinds() if dns_kinds is None else dns_kinds, self.load_certs
        )
        """Keeps the domains' DNS records and gets wildcard certificates by DNS-01."""
        self.status = ProxyStatus(mode="caddy")
        self._pins: dict[str, str] = {}
        self._held: set[str] = set()
        self._last: dict[str, str] = {}
        self._acme_errors: dict[str, str | None] = {}
        self._loaded: tuple[LoadedCert, ...] = ()
        self._applied: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._certs_thread: threading.Thread | None = None
        self._next_start = 0.0
        self._backoff = RESTART_SECONDS
        self._next_certs = 0.0
        self._next_check = 0.0

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start Caddy and the loop; a Caddy that will not start is retried by the loop."""
        self._ensure_running()
        self.sync()
        self._thread = threading.Thread(target=self._loop, name="proxy", daemon=True)
        self._thread.start()
        self.dns.start()

    def stop(self) -> None:
        self.dns.stop()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
        if self._certs_thread is not None:
            self._certs_thread.join(5)  # a handshake is bounded at 3 s per host
        self.caddy.stop()

    def kick(self) -> None:
        """Sync soon (a domain changed, a deploy or restore ended)."""
        self._wake.set()
        self.dns.kick()

    def load_certs(self, certs: list[LoadedCert]) -> None:
        """The certificates Moorage obtained itself (wildcards by DNS-01), to load."""
        if tuple(certs) != self._loaded:
            self._loaded = tuple(certs)
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._ensure_running()
                self.sync()
                if time.monotonic() >= self._next_certs and not self._reading():
                    self._next_certs = time.monotonic() + CERT_SECONDS
                    # Apart: a handshake per TLS host (up to 3 s each while a certificate
                    # is being issued) must never hold up a route change.
                    self._certs_thread = threading.Thread(
                        target=self._read_certs_logged, name="proxy-certs", daemon=True
                    )
                    self._certs_thread.start()
            except Exception:  # the loop outlives any one failure; the next tick retries
                log.exception("proxy sync failed")

    def _reading(self) -> bool:
        return self._certs_thread is not None and self._certs_thread.is_alive()

    def _read_certs_logged(self) -> None:
        try:
            self.read_certs()
        except Exception:  # the next round retries
            log.exception("proxy: reading the served certificates failed")

    def _observe(self) -> bool:
        """Record whether Caddy runs and its pid in the status; true when it runs. Every
        place that learns either updates both, so ``GET /api/proxy`` never pairs a new
        ``starts`` count with the old process's pid."""
        self.status.running = self.caddy.alive()
        self.status.pid = self.caddy.pid if self.status.running else None
        return self.status.running

    def _ensure_running(self) -> None:
        with self._lock:
            if self._observe() or time.monotonic() < self._next_start:
                return
            if self.status.starts:
                log.warning("caddy is not running: starting it again")
            self._next_start = time.monotonic() + self._backoff
            self._applied = None
            try:
                self.caddy.start(build(self._site(), []))
            except (ProxyError, OSError) as exc:
                self.status.last_error = str(exc)
                log.error("could not start caddy (next try in %.0f s): %s", self._backoff, exc)
                self._backoff = min(self._backoff * 2, MAX_RESTART_SECONDS)
                return
            self._backoff = RESTART_SECONDS
            self.status.starts += 1
            self._observe()

    # --- the config -----------------------------------------------------------

    def _site(self) -> ProxySite:
        from dataclasses import replace

        return replace(self.site, loaded=self._loaded)

    def sync(self) -> bool:
        """Derive the config from the database and the engine and load it into Caddy
        when it differs from what Caddy runs. True when Caddy runs the derived config."""
        with self._lock:
            if not self._observe():
                return False
            with self.db.session() as s:
                routes = domains.routing(s)
            config = build(self._site(), [self._proxy_route(r) for r in routes])
            self.status.routes = len(routes)
            if config == self._applied and (
                time.monotonic() < self._next_check or self.caddy.config() == config
            ):
                self._next_check = max(self._next_check, time.monotonic() + CHECK_SECONDS)
                return True
            try:
                self.caddy.load(config)
            except ProxyError as exc:
                self.status.last_error = exc.args[0]
                log.error("%s", exc)
                return False
            self._applied = config
            self.status.loaded_at = datetime.now().astimezone()
            self.status.last_error = None
            return True

    def _proxy_route(self, route: Route) -> ProxyRoute:
        upstream = self._upstream(route)
        if upstream is not None:
            self._last[route.host] = upstream
        else:
            upstream = self._last.get(route.host)
        return ProxyRoute(route.host, upstream, route.tls, route.redirect_http)

    def _upstream(self, route: Route) -> str | None:
        held = route.workload_id in self._held
        try:
            containers = self.engine.containers({LABEL_WORKLOAD: route.workload_id})
        except MoorageError as exc:
            log.warning("proxy: could not list containers: %s", exc.message)
            return None
        eligible = [
            c
            for c in containers
            if c.running
            and c.labels.get(LABEL_CANDIDATE) != "true"
            and (route.service is None or c.labels.get(COMPOSE_SERVICE) == route.service)
        ]
        if held:  # a compose deploy: only a container it switched to, else stay where it was
            pinned = self._pins.get(route.workload_id)
            eligible = [c for c in eligible if c.id == pinned]
        chosen = self._choose(route, eligible)
        if chosen is None:
            return None
        port = chosen.ports.get((route.port, "tcp"))
        if port is None:
            return None
        addr = self.settings.publish_addr
        return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"

    def _choose(self, route: Route, eligible: list[Container]) -> Container | None:
        pinned = self._pins.get(route.workload_id)
        for c in eligible:
            if c.id == pinned:
                return c
        if route.deployment is not None:
            for c in eligible:
                if c.labels.get(LABEL_DEPLOYMENT) == route.deployment:
                    return c
            if route.kind == "image":
                return None  # the recorded container is down: hold, never a newer one
        return eligible[0] if eligible else None

    def switch(self, workload_id: str, container_id: str) -> None:
        """Send the workload's traffic to ``container_id`` (a deploy's new container that
        passed its health check) before the old one stops: the config is loaded now, and
        the old container gets ``DRAIN_SECONDS`` to answer what it already took. A
        workload without domains returns at once."""
        with self._lock:
            self._pins[workload_id] = container_id
            with self.db.session() as s:
                has = any(r.workload_id == workload_id for r in domains.routing(s))
            if not has:
                return
            if not self.sync():
                log.warning("proxy: the switch to %s is not loaded yet", container_id)
                return
        time.sleep(DRAIN_SECONDS)

    def hold(self, workload_id: str, hold: bool) -> None:
        """While held, the workload's domains keep the upstream they had, or go to a
        container ``switch`` named (a compose deploy: candidates get no request; a
        service recreated in place has its requests held by Caddy for ``HOLD``); on
        release, route to what runs now and load it at once."""
        with self._lock:
            if hold:
                self._held.add(workload_id)
                return
            self._held.discard(workload_id)
            self._pins.pop(workload_id, None)
            with self.db.session() as s:
                has = any(r.workload_id == workload_id for r in domains.routing(s))
            if has and not self.sync():
                log.warning("proxy: the routes of %s are not loaded yet", workload_id)

    # --- what it saw ----------------------------------------------------------

    def _on_log(self, entry: dict[str, Any]) -> None:
        """Keep the last ACME error per host from Caddy's log (cleared by a success)."""
        host = entry.get("identifier")
        if not isinstance(host, str):
            return
        message = str(entry.get("msg", ""))
        if entry.get("level") == "error" and "error" in entry:
            self._acme_errors[host] = f"{message}: {entry['error']}"[:2000]
        elif "certificate obtained successfully" in message:
            self._acme_errors[host] = None

    def read_certs(self) -> None:
        """Read the served certificate of every TLS domain; keep it, export days to
        expiry (``moorage_certificate_expiry_days``), and keep the last ACME error on
        the domain's row."""
        with self.db.session() as s:
            routes = domains.routing(s)
        seen: dict[str, ServedCert] = {}
        for route in routes:
            if self._stop.is_set():
                return
            if route.tls == "off":
                continue
            cert = served(self.settings.proxy_https_addr, route.host)
            if cert is not None:
                seen[route.host] = cert
                metrics.CERT_EXPIRY_DAYS.labels(host=route.host).set(cert.days_left())
        self.status.certs = seen
        with self.db.session() as s:
            for route in routes:
                if route.host in self._acme_errors:
                    domains.set_state(s, route.domain_id, acme_error=self._acme_errors[route.host])

    def cert(self, host: str) -> ServedCert | None:
        return self.status.certs.get(host)

    def acme_error(self, host: str) -> str | None:
        return self._acme_errors.get(host)
