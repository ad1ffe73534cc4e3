"""The DNS keeper against the Cloudflare fake of ``test_cloudflare.py`` on the real store
(SPEC section 12): Moorage never replaces or deletes a record it did not write. A zone's
own records at a domain's name make the domain a ``conflict`` and stay as they were,
through the domain's addition and its removal; a record of Moorage's own address made
by someone else is used and left in place; only the value Moorage wrote is removed; and
an operator cannot point a provider's zone anywhere (``dns_needs_admin``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from moorage.dns.cloudflare import CloudflareDns
from moorage.dns.keeper import DnsKeeper
from moorage.errors import Forbidden
from moorage.plugins.registry import Registry
from moorage.plugins.spec import DnsKind
from moorage.proxy.caddy_config import LoadedCert
from moorage.security.roles import Actor
from moorage.services import dns_providers, domains
from moorage.services.domains import DomainSpec
from moorage.settings import Settings
from moorage.store.db import Database
from moorage.store.tables import AuditEntry, DnsRecord, Domain
from tests.unit.dns.test_cloudflare import FakeCloudflare, config, fake
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, make

db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop
__all__ = ["fake"]

OPERATOR = Actor(user_id="us_otto", username="otto", role="operator", via="token")
PUBLIC_IP = "198.51.100.7"
KINDS: dict[str, DnsKind] = {"cloudflare": CloudflareDns()}


def seed(fake: FakeCloudflare, name: str, content: str, rtype: str = "A") -> None:
    fake.records[f"seed-{name}-{content}"] = {
        "id": f"seed-{name}-{content}",
        "type": rtype,
        "name": name,
        "content": content,
        "ttl": 300,
    }


def zone_state(fake: FakeCloudflare) -> list[tuple[str, str, str]]:
    return sorted((r["name"], r["type"], r["content"]) for r in fake.records.values())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", public_ip=PUBLIC_IP)


@pytest.fixture
def corp(shop: Database, settings: Settings, fake: FakeCloudflare) -> FakeCloudflare:
    """Provider ``corp`` (the fake's zone, put by an admin) holding two records of its own."""
    seed(fake, "www.corp.example", "203.0.113.10")
    seed(fake, "corp.example", "203.0.113.11")
    with shop.session() as s:
        dns_providers.put(s, ADA, settings, KINDS, "corp", "cloudflare", config(fake))
    return fake


def web(db: Database, registry: Registry) -> str:
    """An image workload publishing container port 8080."""
    image = {"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]}
    return make(db, registry, config=image).id


def keeper(db: Database, settings: Settings) -> DnsKeeper:
    loaded: list[list[LoadedCert]] = []
    return DnsKeeper(settings, db, KINDS, loaded.append)


def set_domains(db: Database, actor: Actor, workload_id: str, items: list[DomainSpec]) -> None:
    with db.session() as s:
        domains.replace(s, actor, workload_id, items)


def states(db: Database, workload_id: str) -> dict[str, tuple[str, str | None]]:
    with db.session() as s:
        return {d.host: (d.dns_state, d.dns_error) for d in domains.read(s, workload_id)}


def spec(host: str, **kw: Any) -> DomainSpec:
    return DomainSpec(host=host, port=8080, tls="off", dns_provider="corp", **kw)


def test_foreign_records_survive_the_domain_and_its_removal(
    shop: Database, registry: Registry, settings: Settings, corp: FakeCloudflare
) -> None:
    before = zone_state(corp)
    w = web(shop, registry)
    wanted = [spec("www.corp.example"), spec("corp.example"), spec("new.corp.example")]
    set_domains(shop, ADA, w, wanted)
    keeper(shop, settings).keep()
    seen = states(shop, w)
    assert seen["new.corp.example"] == ("present", None)
    for host in ("www.corp.example", "corp.example"):
        state, error = seen[host]
        assert state == "conflict"
        assert error is not None and "did not create" in error and "203.0.113.1" in error
    assert zone_state(corp) == sorted([*before, ("new.corp.example", "A", PUBLIC_IP)])
    # Only the record Moorage wrote is Moorage's.
    with shop.session() as s:
        assert [r.host for r in s.scalars(select(DnsRecord))] == ["new.corp.example"]
    keeper(shop, settings).keep()  # a second round changes nothing
    assert zone_state(corp) == sorted([*before, ("new.corp.example", "A", PUBLIC_IP)])
    set_domains(shop, ADA, w, [])
    keeper(shop, settings).keep()
    assert zone_state(corp) == before


def test_a_foreign_record_joined_later_is_not_deleted_with_moorages(
    shop: Database, registry: Registry, settings: Settings, corp: FakeCloudflare
) -> None:
    w = web(shop, registry)
    set_domains(shop, ADA, w, [spec("app.corp.example")])
    keeper(shop, settings).keep()
    seed(corp, "app.corp.example", "192.0.2.50")  # someone adds a record of their own
    set_domains(shop, ADA, w, [])
    keeper(shop, settings).keep()
    assert ("app.corp.example", "A", "192.0.2.50") in zone_state(corp)
    assert ("app.corp.example", "A", PUBLIC_IP) not in zone_state(corp)


def test_a_foreign_record_at_moorages_address_is_used_and_kept(
    shop: Database, registry: Registry, settings: Settings, corp: FakeCloudflare
) -> None:
    seed(corp, "same.corp.example", PUBLIC_IP)
    before = zone_state(corp)
    w = web(shop, registry)
    set_domains(shop, ADA, w, [spec("same.corp.example")])
    keeper(shop, settings).keep()
    assert states(shop, w)["same.corp.example"] == ("present", None)
    set_domains(shop, ADA, w, [])
    keeper(shop, settings).keep()
    assert zone_state(corp) == before


def test_a_new_public_ip_moves_only_moorages_record(
    shop: Database, registry: Registry, settings: Settings, corp: FakeCloudflare, tmp_path: Path
) -> None:
    w = web(shop, registry)
    set_domains(shop, ADA, w, [spec("move.corp.example")])
    keeper(shop, settings).keep()
    moved = Settings(data_dir=settings.data_dir, public_ip="198.51.100.8")
    keeper(shop, moved).keep()
    assert states(shop, w)["move.corp.example"] == ("present", None)
    mine = [c for n, t, c in zone_state(corp) if n == "move.corp.example"]
    assert mine == ["198.51.100.8"]


def test_an_operator_cannot_name_a_provider_and_nothing_changes(
    shop: Database, registry: Registry, settings: Settings, corp: FakeCloudflare
) -> None:
    before = zone_state(corp)
    w = web(shop, registry)
    with shop.session() as s:
        audits = len(list(s.scalars(select(AuditEntry))))
    for items in (
        [spec("www.corp.example"), spec("corp.example")],
        [spec("*.corp.example")],
    ):
        with pytest.raises(Forbidden) as caught, shop.session() as s:
            domains.replace(s, OPERATOR, w, items)
        assert caught.value.code == "dns_needs_admin"
    keeper(shop, settings).keep()
    assert zone_state(corp) == before
    with shop.session() as s:
        assert list(s.scalars(select(Domain))) == []
        assert len(list(s.scalars(select(AuditEntry)))) == audits
    # What an admin set an operator may resend unchanged, next to a plain domain of
    # their own; removing or changing it stays an admin's.
    set_domains(shop, ADA, w, [spec("app.corp.example")])
    set_domains(shop, OPERATOR, w, [spec("app.corp.example"), DomainSpec("plain.example", 8080)])
    for items in ([DomainSpec("plain.example", 8080)], [spec("other.corp.example")]):
        with pytest.raises(Forbidden), shop.session() as s:
            domains.replace(s, OPERATOR, w, items)
