"""The ``rfc2136`` DNS kind's config is checked when it is saved, not when a domain first
uses it: the server, the zone, the key name and the TSIG secret (issue 18)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pydantic import ValidationError

from moorage.dns.rfc2136 import Rfc2136Config, Rfc2136Zone, server_address

GOOD = {
    "server": "127.0.0.1:58053",
    "zone": "moorage.test",
    "key_name": "moorage-key",
    "key_secret": "c2VjcmV0LWJ5dGVz",
}


@pytest.mark.parametrize(
    "change",
    [
        {"server": "192.0.2.53"},
        {"server": "[::1]:53"},
        {"server": "::1"},
        {"server": "2001:db8::53"},
        {"zone": "example.org."},
        {"key_name": "_tsig.key"},
    ],
)
def test_good_configs_are_taken_and_the_zone_reads_the_same_address(
    change: dict[str, Any],
) -> None:
    config = Rfc2136Config.model_validate({**GOOD, **change})
    zone = Rfc2136Zone(config)
    assert (zone.host, zone.port) == server_address(config.server)
    ipaddress.ip_address(zone.host)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"server": "127.0.0.1:99999"}, "server"),
        ({"server": "127.0.0.1:"}, "server"),
        ({"server": "not a host:53"}, "server"),
        ({"server": "ns1.example.org"}, "server"),
        ({"server": "[::1]x"}, "server"),
        ({"zone": "exa mple..test"}, "zone"),
        ({"zone": ""}, "zone"),
        ({"zone": "a..b"}, "zone"),
        ({"key_name": "-bad-.example"}, "key_name"),
        ({"key_secret": "not base64!"}, "key_secret"),
        ({"key_secret": ""}, "key_secret"),
    ],
)
def test_bad_configs_name_their_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Rfc2136Config.model_validate({**GOOD, **change})
    assert refused.value.errors()[0]["loc"] == (field,)
