"""DNS providers a domain may name (SPEC section 12), and the address records Moorage
wrote through them.

A provider is a name, a kind (``moorage.dns`` entry point) and its config: kept with
every credential sealed to the instance key (``security.sealing``) and shown masked.
``wanted``/``owned``/``keep``/``forget`` are the rows ``dns/keeper.py`` compares and
writes: the records the domains want against those Moorage wrote and still owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.names import check_slug, new_id
from moorage.plugins.kind_config import MASK, public_config, stored_config, validate_config
from moorage.plugins.spec import DnsKind, DnsZone
from moorage.security.roles import Actor
from moorage.security.sealing import seal, unseal
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.settings import Settings
from moorage.store.tables import DnsProvider, DnsRecord, Domain


def listed(session: Session) -> list[DnsProvider]:
    return list(session.scalars(select(DnsProvider).order_by(DnsProvider.name)))


def get(session: Session, name: str) -> DnsProvider:
    row = session.scalars(select(DnsProvider).where(DnsProvider.name == name)).first()
    if row is None:
        raise NotFound(f"no DNS provider {name!r}")
    return row


def put(
    session: Session,
    actor: Actor,
    settings: Settings,
    kinds: dict[str, DnsKind],
    name: str,
    kind: str,
    config: dict[str, Any],
) -> DnsProvider:
    """Create the provider ``name`` or replace its kind and config. A secret given as the
    mask keeps the stored one (a GET can be PUT back). Raises InvalidInput
    (``invalid_slug``, ``unknown_kind``, ``invalid_config``)."""
    check_slug("DNS provider name", name)
    plugin = kinds.get(kind)
    if plugin is None:
        raise InvalidInput(f"no DNS kind {kind!r} is installed", code="unknown_kind")
    row = session.scalars(select(DnsProvider).where(DnsProvider.name == name)).first()
    if row is not None and row.kind == kind:
        old = unseal(settings.data_dir, row.sealed)
        config = {k: old.get(k, v) if v == MASK else v for k, v in config.items()}
    masked = sorted(k for k, v in config.items() if v == MASK)
    if masked:  # the mask stands for a stored secret; a new provider or kind has none
        raise InvalidInput(
            f"{', '.join(masked)} is the mask, and {name!r} has no stored {kind} secret to "
            "keep: give the secret itself",
            code="invalid_config",
            details={"fields": masked},
        )
    model = validate_config(kind, plugin.config_model, config)
    stored = stored_config(model)
    if row is None:
        row = DnsProvider(id=new_id("dns"), name=name, kind=kind, config={}, sealed="")
        session.add(row)
    row.kind = kind
    row.config = public_config(plugin.config_model, stored)
    row.sealed = seal(settings.data_dir, stored)
    session.flush()
    audit.record(
        session, actor, AuditAction.DNS_PROVIDER_PUT, "dns_provider", row.id, {"name": name}
    )
    return row


def delete(session: Session, actor: Actor, name: str) -> None:
    """Remove a provider no domain names and no kept record needs (409
    ``dns_provider_in_use``: remove those domains first, and let their records go)."""
    row = get(session, name)
    users = session.scalar(
        select(func.count()).select_from(Domain).where(Domain.dns_provider_id == row.id)
    )
    records = session.scalar(
        select(func.count()).select_from(DnsRecord).where(DnsRecord.provider_id == row.id)
    )
    if users or records:
        raise Conflict(
            f"DNS provider {name!r} still has {users} domains and {records} records",
            code="dns_provider_in_use",
        )
    session.delete(row)
    audit.record(
        session, actor, AuditAction.DNS_PROVIDER_DELETE, "dns_provider", row.id, {"name": name}
    )


def zone(
    session: Session, settings: Settings, kinds: dict[str, DnsKind], provider_id: str
) -> DnsZone:
    """The provider's zone, opened with its unsealed config. Raises NotFound, or
    InvalidInput when its kind is no longer installed."""
    row = session.get(DnsProvider, provider_id)
    if row is None:
        raise NotFound(f"no DNS provider {provider_id!r}")
    plugin = kinds.get(row.kind)
    if plugin is None:
        raise InvalidInput(f"no DNS kind {row.kind!r} is installed", code="unknown_kind")
    return plugin.open(unseal(settings.data_dir, row.sealed))


@dataclass(frozen=True)
class Wanted:
    """A domain whose provider keeps its address record."""

    domain_id: str
    host: str
    tls: str
    provider_id: str


def wanted(session: Session) -> list[Wanted]:
    rows = session.execute(
        select(Domain.id, Domain.host, Domain.tls, Domain.dns_provider_id).where(
            Domain.dns_provider_id.is_not(None)
        )
    ).all()
    return [Wanted(d, h, t, p) for d, h, t, p in rows if p is not None]


def owned(session: Session) -> dict[tuple[str, str], tuple[str, str]]:
    """(host, rtype) -> (provider id, address) of every record Moorage wrote."""
    return {
        (r.host, r.rtype): (r.provider_id, r.address) for r in session.scalars(select(DnsRecord))
    }


def keep(session: Session, host: str, rtype: str, provider_id: str, address: str) -> None:
    row = session.get(DnsRecord, (host, rtype))
    if row is None:
        session.add(DnsRecord(host=host, rtype=rtype, provider_id=provider_id, address=address))
    else:
        row.provider_id, row.address = provider_id, address


def forget(session: Session, host: str, rtype: str) -> None:
    row = session.get(DnsRecord, (host, rtype))
    if row is not None:
        session.delete(row)
