"""DNS providers (SPEC section 12): one module per kind (``rfc2136.py``, ``cloudflare.py``),
registered under the ``moorage.dns`` entry point group like any third-party kind;
``keeper.py`` keeps the records the domains want and gets wildcard certificates by
DNS-01 (``dns01.py``). See docs/CODEMAPS/dns.md."""

from __future__ import annotations

from importlib.metadata import entry_points

from moorage.errors import ConfigError
from moorage.plugins.spec import DNS_GROUP, DnsKind


def load_kinds() -> dict[str, DnsKind]:
    """Every installed DNS kind by name; two with one name is a start-up error."""
    kinds: dict[str, DnsKind] = {}
    for ep in entry_points(group=DNS_GROUP):
        kind = ep.load()()
        if not isinstance(kind, DnsKind):
            raise ConfigError(f"entry point {ep.name!r} of {DNS_GROUP} is not a DNS kind")
        if kind.kind in kinds:
            raise ConfigError(f"two DNS kinds are named {kind.kind!r}")
        kinds[kind.kind] = kind
    return kinds
