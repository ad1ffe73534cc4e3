"""A workload's domains: host names the proxy routes to one of its ports (SPEC section 12).

``replace`` checks the whole list before it writes anything: every host a valid DNS
name (RFC 1123 labels, a leading ``*.`` for a wildcard) outside the special-use names
no public CA or resolver serves (``SPECIAL_USE``), used once in the list and by no
other workload (409 ``domain_taken`` naming the owner), a port the workload publishes,
a compose workload's service that its resolved Compose model has (422
``unknown_service``), a known DNS provider, and a wildcard only with one (its
certificate needs DNS-01). A DNS provider writes into a zone other things live in, so
adding, changing or removing a domain that names one is an admin's (403
``dns_needs_admin``); an operator may resend those unchanged. ``routing`` is what the
proxy derives its config from; ``set_state`` keeps what the proxy last saw of a domain
(DNS record, ACME error) on its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, Forbidden, InvalidInput
from moorage.names import new_id
from moorage.plugins.registry import Registry
from moorage.plugins.spec import Stack
from moorage.security.roles import Actor
from moorage.services import audit, deploys
from moorage.services import env as env_service
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.store.tables import DnsProvider, Domain, Workload

MAX_DOMAINS = 64
TLS_MODES = ("acme", "internal", "off")
TlsMode = Literal["acme", "internal", "off"]
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SPECIAL_USE = ("localhost", "invalid", "local", "onion", "in-addr.arpa", "ip6.arpa")
"""Suffixes refused as hosts: RFC 6761 §6.3-6.4 (``localhost``, ``invalid``), RFC 6762
(``local``: multicast DNS), RFC 7686 (``onion``), RFC 3172 (reverse-mapping ``arpa``
zones). ``test`` and ``example`` (RFC 6761 §6.2, §6.5) stay allowed: private test setups
(and this project's tests) use them with their own DNS and CA."""


@dataclass(frozen=True)
class DomainSpec:
    """One domain as a client gives it (``PUT .../domains``)."""

    host: str
    port: int
    service: str | None = None
    tls: str = "acme"
    redirect_http: bool = True
    dns_provider: str | None = None
    """The name of a DNS provider (``services/dns_providers.py``) that keeps its record."""

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")


@dataclass(frozen=True)
class Route:
    """One domain as the proxy needs it: where it goes and how it is served."""

    domain_id: str
    host: str
    port: int
    service: str | None
    tls: str
    redirect_http: bool
    workload_id: str
    kind: str
    deployment: str | None
    """The deployment the last good deploy recorded: the container to route to."""
    dns_provider_id: str | None


def check_host(host: str) -> str:
    """``host`` lower-cased when it is a DNS name of at least two labels (RFC 1123 §2.1,
    at most 253 characters), optionally ``*.`` and such a name; else InvalidInput."""
    name = host.strip().lower().rstrip(".")
    bare = name[2:] if name.startswith("*.") else name
    labels = bare.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidInput(
            f"{host!r} is not a DNS host name (letters, digits and '-' in dot-separated "
            "labels of at most 63, a leading '*.' for a wildcard)",
            code="invalid_domain",
            details={"field": "host", "host": host},
        )
    for suffix in SPECIAL_USE:
        if bare == suffix or bare.endswith("." + suffix):
            raise InvalidInput(
                f"{host!r} is under .{suffix}, a special-use name (RFC 6761) that no public "
                "resolver or certificate authority serves: it cannot be routed here",
                code="invalid_domain",
                details={"field": "host", "host": host},
            )
    return name


def exposed_ports(workload: Workload) -> set[int] | None:
    """The container ports a domain may name: an ``image`` workload's tcp ``ports``;
    None where the kind does not say (``compose``: its services' own files)."""
    if workload.kind != "image":
        return None
    ports = workload.config.get("ports") or []
    return {int(p["container"]) for p in ports if p.get("protocol", "tcp") == "tcp"}


def read(session: Session, workload_id: str) -> list[Domain]:
    """The workload's domains in the order they were given. Raises NotFound."""
    get_workload(session, workload_id)
    return list(
        session.scalars(
            select(Domain).where(Domain.workload_id == workload_id).order_by(Domain.position)
        )
    )


def provider_names(session: Session) -> dict[str, str]:
    """Provider id -> name, for showing domains."""
    return dict(session.execute(select(DnsProvider.id, DnsProvider.name)).tuples().all())


def replace(
    session: Session,
    actor: Actor,
    workload_id: str,
    wanted: list[DomainSpec],
    registry: Registry | None = None,
) -> list[Domain]:
    """Replace the workload's domains with ``wanted``; checks every item before it writes
    (see the module docstring). ``registry`` resolves a stack kind's services (None: not
    checked). Raises InvalidInput (422 ``invalid_domain``, ``port_not_exposed``,
    ``unknown_service``, ``wildcard_needs_dns``, ``dns_provider_unknown``), Forbidden
    (403 ``dns_needs_admin``), Conflict (409 ``domain_taken``) or NotFound; on any of
    them nothing is changed."""
    workload = get_workload(session, workload_id)
    if len(wanted) > MAX_DOMAINS:
        raise InvalidInput(f"at most {MAX_DOMAINS} domains per workload", code="invalid_domain")
    ports = exposed_ports(workload)
    services = _services(session, registry, workload) if registry is not None else None
    providers = {p.name: p.id for p in session.scalars(select(DnsProvider))}
    clean: list[tuple[DomainSpec, str | None]] = []
    seen: set[str] = set()
    for spec in wanted:
        host = check_host(spec.host)
        if host in seen:
            raise InvalidInput(
                f"host {host!r} is given twice", code="invalid_domain", details={"host": host}
            )
        seen.add(host)
        if spec.tls not in TLS_MODES:
            raise InvalidInput(f"tls must be one of {', '.join(TLS_MODES)}", code="invalid_domain")
        if not 0 < spec.port < 65536 or (ports is not None and spec.port not in ports):
            raise InvalidInput(
                f"port {spec.port} is not a tcp port this workload publishes "
                f"({', '.join(map(str, sorted(ports or []))) or 'none'})",
                code="port_not_exposed",
                details={"host": host, "port": spec.port},
            )
        if workload.kind == "image" and spec.service is not None:
            raise InvalidInput("an image workload has no services", code="invalid_domain")
        if services is not None and spec.service not in services:
            raise InvalidInput(
                f"domain {host!r}: the Compose file has no service {spec.service!r} "
                f"(it has: {', '.join(services) or 'none'})"
                if spec.service is not None
                else f"domain {host!r}: name the Compose service it routes to "
                f"(one of: {', '.join(services) or 'none'})",
                code="unknown_service",
                details={"field": "service", "host": host, "service": spec.service},
            )
        published = services.get(spec.service) if services and spec.service else None
        if published is not None and spec.port not in published:
            raise InvalidInput(
                f"port {spec.port} is not a tcp port service {spec.service!r} publishes "
                f"({', '.join(map(str, sorted(published))) or 'none'})",
                code="port_not_exposed",
                details={"host": host, "port": spec.port, "service": spec.service},
            )
        provider_id = None
        if spec.dns_provider is not None:
            provider_id = providers.get(spec.dns_provider)
            if provider_id is None:
                raise InvalidInput(
                    f"no DNS provider {spec.dns_provider!r}",
                    code="dns_provider_unknown",
                    details={"dns_provider": spec.dns_provider},
                )
        if spec.wildcard and provider_id is None:
            raise InvalidInput(
                f"{host!r} is a wildcard: its certificate needs a DNS provider (DNS-01)",
                code="wildcard_needs_dns",
                details={"host": host},
            )
        clean.append(
            (
                DomainSpec(
                    host, spec.port, spec.service, spec.tls, spec.redirect_http, spec.dns_provider
                ),
                provider_id,
            )
        )
    _check_owners(session, workload_id, [s.host for s, _ in clean])
    before = {d.host: d for d in read(session, workload_id)}
    _check_dns_role(actor, before.values(), clean)
    for row in before.values():
        session.delete(row)
    session.flush()
    rows = []
    for position, (spec, provider_id) in enumerate(clean):
        old = before.get(spec.host)
        row = Domain(
            id=new_id("dm"),
            workload_id=workload_id,
            position=position,
            host=spec.host,
            port=spec.port,
            service=spec.service,
            tls=spec.tls,
            redirect_http=spec.redirect_http,
            dns_provider_id=provider_id,
            dns_state=old.dns_state if old and old.dns_provider_id == provider_id else "",
        )
        session.add(row)
        rows.append(row)
    _flush_or_taken(session)
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_DOMAINS_REPLACE,
        "workload",
        workload_id,
        {"hosts": [s.host for s, _ in clean]},
    )
    return rows


def _services(
    session: Session, registry: Registry, workload: Workload
) -> dict[str, set[int] | None] | None:
    """A stack kind's services, each with its published tcp ports (None: not known), as
    its config resolves with its env; None for another kind."""
    source = registry.source(workload.kind)
    if not isinstance(source, Stack):
        return None
    env = {row.key: row.value for row in env_service.rows(session, workload.id)}
    return source.service_ports(dict(workload.config), env)


def _check_dns_role(
    actor: Actor, before: Iterable[Domain], after: list[tuple[DomainSpec, str | None]]
) -> None:
    """Only an admin adds, changes or removes a domain that names a DNS provider (and so
    any wildcard): the provider writes records into a zone that holds others (403)."""
    if actor.can("admin"):
        return
    had = {(d.host, d.dns_provider_id) for d in before if d.dns_provider_id is not None}
    gets = {(spec.host, pid) for spec, pid in after if pid is not None}
    if had != gets:
        changed = sorted(h for h, _ in had ^ gets)
        raise Forbidden(
            f"only an admin may add, change or remove a domain that names a DNS provider "
            f"({', '.join(changed)}): its records go into a zone that holds others",
            code="dns_needs_admin",
            details={"hosts": changed},
        )


def _check_owners(session: Session, workload_id: str, hosts: list[str]) -> None:
    if not hosts:
        return
    taken = session.execute(
        select(Domain.host, Workload.id, Workload.name)
        .join(Workload, Workload.id == Domain.workload_id)
        .where(Domain.host.in_(hosts), Domain.workload_id != workload_id)
    ).first()
    if taken is not None:
        host, owner_id, owner = taken
        raise Conflict(
            f"host {host!r} belongs to workload {owner!r} ({owner_id})",
            code="domain_taken",
            details={"host": host, "workload": owner_id},
        )


def _flush_or_taken(session: Session) -> None:
    """A host another workload took between the check and the write (the unique index)."""
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("a host was just taken by another workload", code="domain_taken") from None


def routing(session: Session) -> list[Route]:
    """Every domain with what the proxy needs to route it, ordered by host."""
    rows = session.execute(
        select(Domain, Workload.kind).join(Workload, Workload.id == Domain.workload_id)
    ).all()
    done: dict[str, str | None] = {}
    routes = []
    for domain, kind in rows:
        if domain.workload_id not in done:
            last = deploys.last_success(session, domain.workload_id)
            done[domain.workload_id] = (last.artifact or {}).get("deployment") if last else None
        routes.append(
            Route(
                domain_id=domain.id,
                host=domain.host,
                port=domain.port,
                service=domain.service,
                tls=domain.tls,
                redirect_http=domain.redirect_http,
                workload_id=domain.workload_id,
                kind=kind,
                deployment=done[domain.workload_id],
                dns_provider_id=domain.dns_provider_id,
            )
        )
    return sorted(routes, key=lambda r: r.host)


def set_state(session: Session, domain_id: str, **state: Any) -> None:
    """Keep what the proxy saw (``dns_state``, ``dns_error``, ``acme_error``) on the
    domain's row, when it still exists and the value changed; no audit row (the
    background's own observation, not a change anyone made)."""
    row = session.get(Domain, domain_id)
    if row is None:
        return
    for key, value in state.items():
        if key not in ("dns_state", "dns_error", "acme_error"):
            raise ValueError(key)
        if getattr(row, key) != value:
            setattr(row, key, value)
