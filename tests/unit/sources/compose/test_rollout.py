"""Which routed services of a stack can roll out beside their running container
(``sources/compose/rollout.py``): two containers cannot share a fixed container name or
a fixed host port, so such a service is recreated in place instead."""

from __future__ import annotations

from typing import Any

import pytest

from moorage.sources.compose.rollout import eligible


def model(**web: Any) -> dict[str, Any]:
    return {"services": {"web": {"image": "x", **web}, "db": {"image": "y"}}}


@pytest.mark.parametrize(
    "web",
    [
        {},
        {"ports": ["127.0.0.1::8080/tcp"]},
        {"ports": ["8080"]},
        {"ports": [8080]},
        {"ports": ["[::1]::8080"]},
        {"ports": [{"target": 8080, "host_ip": "127.0.0.1"}]},
    ],
)
def test_a_service_without_fixed_names_or_ports_rolls_out(web: dict[str, Any]) -> None:
    assert eligible(model(**web), ["web"]) == ["web"]


@pytest.mark.parametrize(
    "web",
    [
        {"container_name": "shop-web"},
        {"ports": ["127.0.0.1:18080:8080/tcp"]},
        {"ports": ["18080:8080"]},
        {"ports": ["[::1]:18080:8080"]},
        {"ports": [{"target": 8080, "published": 18080}]},
    ],
)
def test_a_fixed_name_or_host_port_is_recreated_in_place(web: dict[str, Any]) -> None:
    assert eligible(model(**web), ["web"]) == []


def test_only_named_services_that_exist_are_rolled() -> None:
    assert eligible(model(), ["web", "nope"]) == ["web"]
