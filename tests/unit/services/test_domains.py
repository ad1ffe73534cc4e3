"""``services/domains.replace`` checks on the real store (SPEC section 12): special-use
names (RFC 6761) are no hosts, and a compose workload's domain names one of the services
of its resolved Compose model (``unknown_service``, as volumes and hooks); nothing is
written when a check fails."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from moorage.errors import InvalidInput
from moorage.plugins.registry import Registry
from moorage.services import domains
from moorage.services.domains import DomainSpec
from moorage.store.db import Database
from moorage.store.tables import Domain, Workload
from tests.unit.services import test_workloads as fixtures
from tests.unit.services.test_workloads import ADA, make

db, migrated, pg_url = fixtures.db, fixtures.migrated, fixtures.pg_url
registry, shop = fixtures.registry, fixtures.shop


@pytest.mark.parametrize(
    "host",
    [
        "foo.localhost",
        "LOCALHOST.",
        "a.b.localhost",
        "printer.local",
        "x.onion",
        "bad.invalid",
        "1.0.0.127.in-addr.arpa",
    ],
)
def test_special_use_names_are_refused(host: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        domains.check_host(host)
    assert caught.value.code == "invalid_domain"


@pytest.mark.parametrize("host", ["app.moorage.test", "www.corp.example", "notlocalhost.com"])
def test_test_and_example_names_stay_allowed(host: str) -> None:
    assert domains.check_host(host) == host


COMPOSE = """\
services:
  web:
    image: x
    ports: ["127.0.0.1:8080:80", "127.0.0.1:9001:9000/udp", "[::1]::7000-7002"]
  api:
    image: y
    ports: ["8081:81"]
  db:
    image: z
"""


def stack(db: Database, registry: Registry) -> str:
    web = make(db, registry, name="web")
    with db.session() as s:
        s.add(
            Workload(
                id="wl_compose",
                kind="compose",
                ref_id="wl_compose",
                name="stack",
                project_id=web.project_id,
                stage="production",
                config={"compose": COMPOSE},
                host_powers=[],
            )
        )
    return "wl_compose"


def test_a_compose_domain_names_a_service_of_its_stack_and_a_port_it_publishes(
    shop: Database, registry: Registry
) -> None:
    w = stack(shop, registry)
    for service in ("nosuch", None):
        with pytest.raises(InvalidInput) as caught, shop.session() as s:
            domains.replace(s, ADA, w, [DomainSpec("app.example.com", 1, service)], registry)
        assert caught.value.code == "unknown_service"
        assert "api" in caught.value.message
        if service:
            assert service in caught.value.message
    for service, port in (("api", 1), ("api", 80), ("db", 5432), ("web", 9000), ("web", 1)):
        with pytest.raises(InvalidInput) as caught, shop.session() as s:
            domains.replace(s, ADA, w, [DomainSpec("app.example.com", port, service)], registry)
        assert caught.value.code == "port_not_exposed", (service, port)
    with shop.session() as s:
        assert list(s.scalars(select(Domain))) == []
        domains.replace(
            s,
            ADA,
            w,
            [
                DomainSpec("app.example.com", 81, "api"),
                # Compose 1.29 keeps "ip:host:container" entries as strings.
                DomainSpec("web.example.com", 80, "web"),
                DomainSpec("range.example.com", 7001, "web"),
            ],
            registry,
        )
    with shop.session() as s:
        assert [(d.host, d.service, d.port) for d in s.scalars(select(Domain))] == [
            ("app.example.com", "api", 81),
            ("web.example.com", "web", 80),
            ("range.example.com", "web", 7001),
        ]
