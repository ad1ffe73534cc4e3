"""How each row of the table finds its power in a Compose model's services, volumes and
networks: mounts, namespaces, privileges, kernel and daemon settings, ports, networks.

Each ``find(model, scope)`` yields ``(where, detail)``; ``table.RULES`` names the row.
Both Compose v1's short syntax and v2's long syntax are read. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from moorage.sources.policy.model import (
    Find,
    Finding,
    Model,
    Scope,
    as_list,
    each_entry,
    each_service,
    host_path,
    inside,
    is_set,
    truthy,
)


def _mode(value: Any) -> str:
    return "" if value is None else str(value).strip()


# --- volumes and mounts -----------------------------------------------------------------


@dataclass(frozen=True)
class _Mount:
    type: str  # bind, volume, tmpfs, image, npipe, cluster
    source: str
    target: str
    propagation: str = ""
    read_only: bool = False


def _mounts(service: dict[str, Any]) -> Iterator[_Mount]:
    for entry in as_list(service.get("volumes")):
        if isinstance(entry, dict):
            kind = str(entry.get("type") or "volume")
            bind = entry.get("bind") if isinstance(entry.get("bind"), dict) else {}
            yield _Mount(
                kind,
                str(entry.get("source") or ""),
                str(entry.get("target") or ""),
                str((bind or {}).get("propagation") or ""),
                truthy(entry.get("read_only")),
            )
        elif isinstance(entry, str):
            # Short syntax: [SOURCE:]TARGET[:MODE]. A source that is a path is a bind mount.
            parts = entry.split(":")
            if len(parts) == 1:
                yield _Mount("volume", "", parts[0])
                continue
            source, target = parts[0], parts[1]
            is_path = source.startswith(("/", ".", "~", "$")) or "/" in source
            modes = parts[2].split(",") if len(parts) > 2 else []
            yield _Mount("bind" if is_path else "volume", source, target, "", "ro" in modes)


def bind_mounts(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        for m in _mounts(service):
            if m.type == "bind":
                path = host_path(m.source, scope)
                if not any(inside(path, own) for own in scope.mounts):
                    # The mode is part of the power: a grant of a read-only bind is not
                    # one of the same path read-write.
                    mode = "read-only" if m.read_only else "read-write"
                    yield name, f"{mode} bind mount of the host path {m.source!r} at {m.target!r}"
                elif m.propagation not in ("", "private", "rprivate"):
                    yield name, f"bind mount of {m.source!r} with {m.propagation} propagation"
            elif m.type not in ("volume", "tmpfs", "image"):
                yield name, f"{m.type} mount of {m.source!r} at {m.target!r}"


def volume_drivers(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, volume in each_entry(model.resolved, "volumes"):
        driver = volume.get("driver")
        if driver not in (None, "", "local"):
            yield f"volumes.{name}", f"volume driver {driver!r}"
        opts = volume.get("driver_opts")
        if isinstance(opts, dict) and opts:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
            yield f"volumes.{name}", f"driver_opts {shown}"
        elif is_set(opts):
            shown = str(opts)
            yield f"volumes.{name}", f"driver_opts {shown}"


def _external(item: dict[str, Any]) -> bool:
    external = item.get("external")
    return truthy(external) or isinstance(external, dict)


def _named_apart(key: str, item: dict[str, Any], scope: Scope) -> bool:
    """The object carries a name of its own, not the one Compose gives the project's."""
    name = item.get("name")
    return is_set(name) and not (scope.project and name == f"{scope.project}_{key}")


def foreign_volumes(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, volume in each_entry(model.resolved, "volumes"):
        if _external(volume):
            yield f"volumes.{name}", f"external volume {volume.get('name') or name!r}"
        elif _named_apart(name, volume, scope):
            yield f"volumes.{name}", f"volume named {volume['name']!r} outside the project"


def volumes_from(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        for entry in as_list(service.get("volumes_from")):
            if isinstance(entry, str) and entry.startswith("container:"):
                yield name, f"volumes_from {entry}"


# --- namespaces -------------------------------------------------------------------------


def namespace(key: str, allowed: tuple[str, ...]) -> Find:
    """A namespace mode: ``host`` or ``container:<any>`` joins one Moorage did not make;
    ``service:<name>`` (this project) and the ``allowed`` values are fine."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for name, service in each_service(model.resolved):
            value = service.get(key)
            mode = _mode(value)
            if value is None or mode in ("", *allowed) or mode.startswith("service:"):
                continue
            yield name, f"{key}: {value}"

    return find


# --- privileges ---------------------------------------------------------------------------


def privileged(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        if truthy(service.get("privileged")):
            yield name, "privileged: true"
        for hook in ("post_start", "pre_stop"):
            for entry in as_list(service.get(hook)):
                if isinstance(entry, dict) and truthy(entry.get("privileged")):
                    yield name, f"{hook} hook runs privileged"


# Docker's default capability set: adding one of these again changes nothing.
DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def cap_add(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        for cap in as_list(service.get("cap_add")):
            plain = str(cap).strip().upper().removeprefix("CAP_")
            if plain not in DEFAULT_CAPABILITIES:
                yield name, f"cap_add {cap}"


def present(key: str) -> Find:
    """Any value of ``key`` (besides empty) is the power."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for name, service in each_service(model.resolved):
            value = service.get(key)
            if is_set(value) and value is not False:
                yield name, f"{key}: {value}"

    return find


PRIORITY_LIMITS = ("rtprio", "nice")  # RLIMIT_RTPRIO, RLIMIT_NICE


def _above_zero(value: Any) -> bool:
    """A limit (a number, or ``{soft, hard}``: a process may raise soft up to hard) above
    0; anything unreadable counts as above."""
    values = [value.get("soft"), value.get("hard")] if isinstance(value, dict) else [value]
    for v in values:
        try:
            if v is not None and int(str(v)) != 0:
                return True
        except ValueError:
            return True
    return False


def priorities(model: Model, scope: Scope) -> Iterator[Finding]:
    """Limits that let an unprivileged process raise its scheduling priority (setrlimit(2):
    RLIMIT_RTPRIO and RLIMIT_NICE above 0 stand in for CAP_SYS_NICE), and a real-time
    runtime budget for the container's cgroup."""
    for name, service in each_service(model.resolved):
        limits = service.get("ulimits")
        for key in PRIORITY_LIMITS:
            if isinstance(limits, dict) and key in limits and _above_zero(limits[key]):
                yield name, f"ulimits {key}: {limits[key]}"
        if _above_zero(service.get("cpu_rt_runtime")):
            yield name, f"cpu_rt_runtime: {service['cpu_rt_runtime']}"


def gpus(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        if is_set(service.get("gpus")):
            yield name, f"gpus: {service['gpus']}"
        deploy = service.get("deploy") if isinstance(service.get("deploy"), dict) else {}
        resources = (deploy or {}).get("resources") or {}
        reservations = resources.get("reservations") if isinstance(resources, dict) else None
        if isinstance(reservations, dict):
            for key in ("devices", "generic_resources"):
                if is_set(reservations.get(key)):
                    yield name, f"deploy.resources.reservations.{key}"


def security_opt(model: Model, scope: Scope) -> Iterator[Finding]:
    # Only no-new-privileges (either way) leaves confinement as it is; everything else
    # (apparmor/seccomp unconfined or a custom profile, label:disable or a label type,
    # systempaths=unconfined, writable-cgroups) relaxes or replaces it.
    for name, service in each_service(model.resolved):
        for opt in as_list(service.get("security_opt")):
            text = str(opt).strip()
            key, _, value = text.replace("=", ":", 1).partition(":")
            if key == "no-new-privileges" and value in ("", "true", "false"):
                continue
            yield name, f"security_opt {text}"


# Kubernetes' "safe" sysctls (Pod Security Standards, baseline): namespaced, and unable
# to affect other containers or the host.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ping_group_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)


def sysctls(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        value = service.get("sysctls")
        pairs: Iterable[tuple[str, Any]]
        if isinstance(value, dict):
            pairs = value.items()
        else:
            pairs = (str(item).partition("=")[::2] for item in as_list(value))
        for key, setting in pairs:
            if str(key).strip() not in SAFE_SYSCTLS:
                yield name, f"sysctls {key}={setting}"


def oom_score_adj(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        value = service.get("oom_score_adj")
        try:
            negative = value is not None and int(value) < 0
        except (TypeError, ValueError):
            negative = True
        if negative:
            yield name, f"oom_score_adj: {value}"


def isolation(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        value = service.get("isolation")
        if is_set(value) and value != "default":
            yield name, f"isolation: {value}"


LOG_DRIVERS = ("json-file", "local", "none")


def log_driver(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        logging = service.get("logging")
        driver = logging.get("driver") if isinstance(logging, dict) else None
        if driver not in (None, *LOG_DRIVERS):
            yield name, f"logging driver {driver!r}"


def providers(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        if is_set(service.get("provider")):
            yield name, f"provider {service['provider']}"
        if truthy(service.get("use_api_socket")):
            yield name, "use_api_socket: true (the Docker API socket)"
        if is_set(service.get("models")):
            yield name, "models"
    if is_set(model.resolved.get("models")):
        yield "models", "models"


# --- ports and networks ------------------------------------------------------------------


def _port_host_ip(entry: Any) -> str | None:
    """The host address a ``ports`` entry publishes on (None: every address)."""
    if isinstance(entry, dict):
        ip = entry.get("host_ip")
        return str(ip) if ip else None
    if isinstance(entry, int):
        return None
    text = str(entry).strip().rsplit("/", 1)[0]
    parts = text.rsplit(":", 2)
    if len(parts) < 3:
        return None  # CONTAINER or HOST:CONTAINER: every address
    return parts[0].strip("[]") or None


EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 (what Docker publishes on when no address is given)


def _unspecified(ip: str | None) -> str:
    return EVERY_ADDRESS if ip in (None, "", "::", "[::]") else str(ip)


def ports(model: Model, scope: Scope) -> Iterator[Finding]:
    allowed = _unspecified(scope.publish_addr)
    for name, service in each_service(model.resolved):
        for entry in as_list(service.get("ports")):
            ip = _unspecified(_port_host_ip(entry))
            if ip != allowed:
                yield name, f"port {entry} published on {ip}, not on {scope.publish_addr}"


def _network_name(key: str, network: dict[str, Any]) -> str:
    external = network.get("external")
    if isinstance(external, dict) and external.get("name"):
        return str(external["name"])
    return str(network.get("name") or key)


def foreign_networks(model: Model, scope: Scope) -> Iterator[Finding]:
    for key, network in each_entry(model.resolved, "networks"):
        named = _network_name(key, network)
        joins = _external(network) or _named_apart(key, network, scope)
        if joins and named not in scope.networks:
            yield f"networks.{key}", f"joins the network {named!r}, which Moorage does not own"


def network_drivers(model: Model, scope: Scope) -> Iterator[Finding]:
    for key, network in each_entry(model.resolved, "networks"):
        driver = network.get("driver")
        if driver not in (None, "", "bridge"):
            yield f"networks.{key}", f"network driver {driver!r}"
        for attr in ("driver_opts", "ipam"):
            if is_set(network.get(attr)):
                yield f"networks.{key}", f"{attr} {network[attr]}"
    for name, service in each_service(model.resolved):
        attached = service.get("networks")
        for key, endpoint in attached.items() if isinstance(attached, dict) else ():
            if isinstance(endpoint, dict) and is_set(endpoint.get("driver_opts")):
                yield name, f"driver_opts on network {key}: {endpoint['driver_opts']}"


# --- Moorage's own labels -----------------------------------------------------------------

MOORAGE_LABEL_PREFIX = "moorage."  # ``runtime.engine.LABEL_*``, ``moorage.pin.<n>``...


def _ours(labels: Any) -> Iterator[str]:
    """The keys in Moorage's namespace of ``labels`` in either Compose syntax: a map, or a
    list of ``K=V`` (case and surrounding blanks ignored: nothing close to one passes)."""
    keys = (
        (str(k) for k in labels)
        if isinstance(labels, dict)
        else (str(entry).partition("=")[0] for entry in as_list(labels))
    )
    return (key for key in keys if key.strip().lower().startswith(MOORAGE_LABEL_PREFIX))


def moorage_labels(model: Model, scope: Scope) -> Iterator[Finding]:
    """Labels in Moorage's namespace on a service, volume, network, secret or config of a
    Compose file (resolved: a key may come from interpolation). The image kind has none
    of its own (``model.written`` is empty): every label on its container is Moorage's."""
    if not model.written:
        return
    for name, service in each_service(model.resolved):
        yield from ((name, f"label {key!r}") for key in _ours(service.get("labels")))
    for section in ("volumes", "networks", "secrets", "configs"):
        for name, item in each_entry(model.resolved, section):
            yield from (
                (f"{section}.{name}", f"label {key!r}") for key in _ours(item.get("labels"))
            )
