"""Every MOORAGE_* environment variable, parsed and typed in one place.

Other modules take a ``Settings`` value; none of them reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moorage.errors import ConfigError
from moorage.store.states import SwapMethod

GIB = 1024**3
DEFAULT_BIND = "127.0.0.1:8700"
# The UI build of a source checkout: <repo>/web/build next to the moorage package.
DEFAULT_WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "build"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    bind_host: str = "127.0.0.1"
    bind_port: int = 8700
    database_url: str = ""
    volume_roots: tuple[Path, ...] = ()
    publish_addr: str = "127.0.0.1"
    admin_password: str | None = None
    snapshot_max_bytes: int = 64 * GIB
    enable_faultpoints: bool = False
    faultpoint: str | None = None
    docker_host: str | None = None
    restore_swap: str = "auto"
    """auto (RENAME_EXCHANGE where supported), exchange, or rename (the fallback)."""
    reconcile_seconds: float = 30.0
    offsite_seconds: float = 60.0
    """How often the copier's catch-up pass runs (SPEC section 11); a capture wakes it too."""
    deploy_workers: int = 4
    container_labels: dict[str, str] = field(default_factory=dict)
    web_dir: Path | None = None
    """The built UI served at /; None serves the API alone."""
    run_dir: Path = Path("/run/moorage")
    """A tmpfs (Moorage mounts one there) for volume pins; see ``runtime/pins.py``."""
    proxy: str = "none"
    """``caddy``: Moorage runs and configures Caddy (SPEC section 12); ``none``: no proxy.
    The default is ``caddy`` when a ``caddy`` binary is on the PATH."""
    proxy_http_addr: str = ":80"
    proxy_https_addr: str = ":443"
    proxy_admin_addr: str = "127.0.0.1:2019"
    """Caddy's admin API: always a loopback address (it takes any config)."""
    acme_directory: str | None = None
    """The ACME CA's directory URL; None: Caddy's default (Let's Encrypt)."""
    acme_email: str | None = None
    acme_ca_root: Path | None = None
    """An extra trusted root (PEM) for the ACME directory, e.g. a test CA such as pebble."""
    public_ip: str | None = None
    """The address DNS providers point a domain's A (or AAAA) record at."""
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    """Addresses (or networks) whose ``X-Forwarded-For`` names the client: every bound by
    client address (pacing, login backoff, body shares) then applies to the address it
    names (uvicorn's ``forwarded_allow_ips``). A reverse proxy on the host needs
    127.0.0.1 here; without one, any process on the host could name any address, so an
    install reached only directly (or through SSH tunnels) sets it empty."""
    anonymous_rate: float = 20.0
    """Requests a second, on average, each client address may send that no credential
    vouches for (``api/pacing.py``; a burst of 30 s of it at once); 0: no bound."""
    # Not a MOORAGE_* variable: the cap on an ordinary JSON request body.
    max_body_bytes: int = field(default=1024 * 1024)

    @property
    def volumes_dir(self) -> Path:
        return self.data_dir / "volumes"

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def journals_dir(self) -> Path:
        return self.data_dir / "journals"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("MOORAGE_DATA_DIR") or "./var").absolute()
        host, port = _parse_bind(env.get("MOORAGE_BIND") or DEFAULT_BIND)
        database_url = env.get("MOORAGE_DATABASE_URL") or f"sqlite:///{data_dir / 'moorage.db'}"
        roots = tuple(
            Path(p).absolute() for p in (env.get("MOORAGE_VOLUME_ROOTS") or "").split(":") if p
        )
        return cls(
            data_dir=data_dir,
            bind_host=host,
            bind_port=port,
            database_url=database_url,
            volume_roots=roots,
            publish_addr=env.get("MOORAGE_PUBLISH_ADDR") or "127.0.0.1",
            admin_password=env.get("MOORAGE_ADMIN_PASSWORD") or None,
            snapshot_max_bytes=_parse_int(env, "MOORAGE_SNAPSHOT_MAX_BYTES", 64 * GIB, minimum=1),
            enable_faultpoints=env.get("MOORAGE_ENABLE_FAULTPOINTS") == "1",
            faultpoint=env.get("MOORAGE_FAULTPOINT") or None,
            docker_host=env.get("DOCKER_HOST") or None,
            reconcile_seconds=float(_parse_int(env, "MOORAGE_RECONCILE_SECONDS", 30, minimum=1)),
            offsite_seconds=float(_parse_int(env, "MOORAGE_OFFSITE_SECONDS", 60, minimum=1)),
            deploy_workers=_parse_int(env, "MOORAGE_DEPLOY_WORKERS", 4, minimum=1),
            restore_swap=_parse_choice(env, "MOORAGE_RESTORE_SWAP", ("auto", *SwapMethod)),
            container_labels=_parse_labels(env.get("MOORAGE_CONTAINER_LABELS") or ""),
            web_dir=Path(env.get("MOORAGE_WEB_DIR") or DEFAULT_WEB_DIR).absolute(),
            run_dir=Path(env.get("MOORAGE_RUN_DIR") or "/run/moorage").absolute(),
            anonymous_rate=float(_parse_int(env, "MOORAGE_ANONYMOUS_RATE", 20, minimum=0)),
            trusted_proxies=_parse_networks(env, "MOORAGE_TRUSTED_PROXIES", "127.0.0.1"),
            **_proxy_settings(env),
        )


def _proxy_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The MOORAGE_PROXY* and MOORAGE_ACME_* variables (SPEC section 12)."""
    default = "caddy" if shutil.which("caddy") else "none"
    proxy = env.get("MOORAGE_PROXY") or default
    if proxy not in ("caddy", "none"):
        raise ConfigError(f"MOORAGE_PROXY must be caddy or none, got {proxy!r}")
    admin = env.get("MOORAGE_PROXY_ADMIN_ADDR") or "127.0.0.1:2019"
    if _parse_bind(admin)[0] not in ("127.0.0.1", "::1", "localhost"):
        raise ConfigError(f"MOORAGE_PROXY_ADMIN_ADDR must be a loopback address, got {admin!r}")
    public_ip = env.get("MOORAGE_PUBLIC_IP") or None
    if public_ip is not None:
        try:
            ipaddress.ip_address(public_ip)
        except ValueError:
            raise ConfigError(f"MOORAGE_PUBLIC_IP is not an IP address: {public_ip!r}") from None
    root = env.get("MOORAGE_ACME_CA_ROOT") or None
    return {
        "proxy": proxy,
        "proxy_http_addr": _parse_listen(env, "MOORAGE_PROXY_HTTP_ADDR", ":80"),
        "proxy_https_addr": _parse_listen(env, "MOORAGE_PROXY_HTTPS_ADDR", ":443"),
        "proxy_admin_addr": admin,
        "acme_directory": env.get("MOORAGE_ACME_DIRECTORY") or None,
        "acme_email": env.get("MOORAGE_ACME_EMAIL") or None,
        "acme_ca_root": Path(root).absolute() if root else None,
        "public_ip": public_ip,
    }


def _parse_listen(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must look like :443 or 127.0.0.1:8443, got {value!r}")
    return value


def _parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"MOORAGE_BIND must look like 127.0.0.1:8700, got {value!r}")
    return host.strip("[]"), int(port)


RESERVED_LABELS = frozenset(
    {"moorage.workload", "moorage.deployment", "moorage.project", "moorage.stage"}
)
RESERVED_LABEL_PREFIXES = ("moorage.pin.",)


def _parse_labels(value: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key or key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES):
            raise ConfigError(
                f"MOORAGE_CONTAINER_LABELS takes key=value pairs separated by commas, got {item!r}"
            )
        labels[key] = val
    return labels


def _parse_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _parse_networks(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks (``10.0.0.0/8``); unset: the
    default, set but empty (``NAME=``): none."""
    raw = env.get(name)
    value = default if raw is None else raw
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"{name} must list IP addresses or networks separated by commas, got {item!r}"
            ) from None
        found.append(item)
    return tuple(found)


def _parse_int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value
