"""What a workload may ask of Docker: one table of host powers, checked on the resolved model.

A *host power* is anything in a container's configuration that reaches past the
container into the host: a host path, a host namespace, a device, a capability, a
daemon-side plugin, an address other than ``MOORAGE_PUBLISH_ADDR``. An operator may
use Moorage volumes, ports on ``MOORAGE_PUBLISH_ADDR``, env, health checks, resource
limits and networks Moorage owns; everything in ``RULES`` needs an admin
(``services.powers`` enforces that, ``docs/CODEMAPS/policy.md`` explains each row).

The model is always the one Docker will run, in the vocabulary of the Compose
specification: for ``compose`` the output of ``config`` (``sources.compose.file``:
interpolation, ``extends`` and ``include`` resolved), plus the file as written for
the few attributes Compose resolves away (``env_file``, ``extends.file``,
``include``), which are judged first (``before_compose``: Compose must not read a host
file for an operator at all); for ``image`` the ``ContainerSpec`` Moorage builds,
written as one service (``service_of``). The table is closed: an attribute no row has reviewed
(``REVIEWED``) is itself a power (row ``unreviewed``), so a Compose release that adds
a way to reach the host needs an admin until someone reads it and adds a row.

Pure: no I/O, no engine, no Compose; the caller hands in the model and the scope.
"""

from __future__ import annotations

import dataclasses
import os.path
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from moorage.plugins.spec import HostPower
from moorage.runtime.engine import ContainerSpec


@dataclass(frozen=True)
class Model:
    """A workload's Docker configuration in Compose's vocabulary."""

    resolved: dict[str, Any]
    """What Docker will run: top-level ``services``, ``volumes``, ``networks``, ``secrets``..."""
    written: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The Compose file as written (aliases expanded, nothing interpolated), or ``{}``."""


@dataclass(frozen=True)
class Scope:
    """What the workload owns, so asking for it reaches nothing of the host's."""

    directory: str
    """The workload's own directory: Moorage writes every file in it, so reads inside are fine."""
    publish_addr: str
    """``MOORAGE_PUBLISH_ADDR``: the one host address ports may be published on."""
    mounts: tuple[str, ...] = ()
    """Host paths of the workload's Moorage volumes (checked by the volume rules)."""
    networks: frozenset[str] = frozenset()
    """Docker networks Moorage creates for the workload's project and stage."""
    project: str = ""
    """The Compose project the model was resolved under: ``<project>_<key>`` is the name
    Compose v2 prints for the project's own networks and volumes."""


Finding = tuple[str, str]  # (where: a service, or "volumes.<name>" and so on; what exactly)
Find = Callable[[Model, Scope], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    """One row of the policy: a host power, how it is recognised and why it reaches the host."""

    name: str
    checks: str
    why: str
    find: Find


# --- reading the model ---------------------------------------------------------------


def _services(model: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    services = model.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                yield str(name), service


def _top(model: dict[str, Any], key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    section = model.get(key)
    if isinstance(section, dict):
        for name, item in section.items():
            yield str(name), item if isinstance(item, dict) else {}


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "y", "on", "1")
    return bool(value)


def _set(value: Any) -> bool:
    """Present and not empty: ``cap_add: []`` asks for nothing."""
    return value not in (None, "", [], {})


def _inside(path: str, base: str) -> bool:
    if not base:
        return False
    base = os.path.normpath(base)
    return os.path.commonpath([os.path.normpath(path), base]) == base


def _host_path(path: str, scope: Scope) -> str:
    return os.path.normpath(os.path.join(scope.directory, os.path.expanduser(path)))


def _outside(path: Any, scope: Scope) -> str | None:
    """Why a file path Compose reads is not the workload's own, or None when it is."""
    if not isinstance(path, str) or not path:
        return None
    if "$" in path:
        return f"{path!r} (interpolated: only a literal path is checked before Compose reads it)"
    if not _inside(_host_path(path, scope), scope.directory):
        return repr(path)
    return None


def _mode(value: Any) -> str:
    return "" if value is None else str(value).strip()


# --- volumes and mounts -----------------------------------------------------------------


@dataclass(frozen=True)
class _Mount:
    type: str  # bind, volume, tmpfs, image, npipe, cluster
    source: str
    target: str
    propagation: str = ""


def _mounts(service: dict[str, Any]) -> Iterator[_Mount]:
    for entry in _items(service.get("volumes")):
        if isinstance(entry, dict):
            kind = str(entry.get("type") or "volume")
            bind = entry.get("bind") if isinstance(entry.get("bind"), dict) else {}
            yield _Mount(
                kind,
                str(entry.get("source") or ""),
                str(entry.get("target") or ""),
                str((bind or {}).get("propagation") or ""),
            )
        elif isinstance(entry, str):
            # Short syntax: [SOURCE:]TARGET[:MODE]. A source that is a path is a bind mount.
            parts = entry.split(":")
            if len(parts) == 1:
                yield _Mount("volume", "", parts[0])
                continue
            source, target = parts[0], parts[1]
            is_path = source.startswith(("/", ".", "~", "$")) or "/" in source
            yield _Mount("bind" if is_path else "volume", source, target)


def _bind_mounts(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        for m in _mounts(service):
            if m.type == "bind":
                path = _host_path(m.source, scope)
                if not any(_inside(path, own) for own in scope.mounts):
                    yield name, f"bind mount of the host path {m.source!r} at {m.target!r}"
                elif m.propagation not in ("", "private", "rprivate"):
                    yield name, f"bind mount of {m.source!r} with {m.propagation} propagation"
            elif m.type not in ("volume", "tmpfs", "image"):
                yield name, f"{m.type} mount of {m.source!r} at {m.target!r}"


def _volume_drivers(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, volume in _top(model.resolved, "volumes"):
        driver = volume.get("driver")
        if driver not in (None, "", "local"):
            yield f"volumes.{name}", f"volume driver {driver!r}"
        opts = volume.get("driver_opts")
        if isinstance(opts, dict) and opts:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
            yield f"volumes.{name}", f"driver_opts {shown}"
        elif _set(opts):
            shown = str(opts)
            yield f"volumes.{name}", f"driver_opts {shown}"


def _external(item: dict[str, Any]) -> bool:
    external = item.get("external")
    return _truthy(external) or isinstance(external, dict)


def _named_apart(key: str, item: dict[str, Any], scope: Scope) -> bool:
    """The object carries a name of its own, not the one Compose gives the project's."""
    name = item.get("name")
    return _set(name) and not (scope.project and name == f"{scope.project}_{key}")


def _foreign_volumes(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, volume in _top(model.resolved, "volumes"):
        if _external(volume):
            yield f"volumes.{name}", f"external volume {volume.get('name') or name!r}"
        elif _named_apart(name, volume, scope):
            yield f"volumes.{name}", f"volume named {volume['name']!r} outside the project"


def _volumes_from(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        for entry in _items(service.get("volumes_from")):
            if isinstance(entry, str) and entry.startswith("container:"):
                yield name, f"volumes_from {entry}"


# --- files Compose reads on the host ----------------------------------------------------


def _file_of(section: str) -> Find:
    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for name, item in _top(model.resolved, section):
            why = _outside(item.get("file"), scope)
            if why is not None:
                yield f"{section}.{name}", f"reads the host file {why}"

    return find


def _paths(value: Any) -> Iterator[Any]:
    for entry in _items(value):
        yield entry.get("path") if isinstance(entry, dict) else entry


def _service_files(key: str) -> Find:
    """A service attribute naming files Compose reads into the container (``env_file``,
    ``label_file``). Compose merges them away (v1 drops the key), so the file as written
    is read too, where an interpolated path needs an admin."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for doc in (model.written, model.resolved):
            for name, service in _services(doc):
                for path in _paths(service.get(key)):
                    why = _outside(path, scope)
                    if why is not None:
                        yield name, f"{key} {why}"

    return find


def _extends_files(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.written):
        extends = service.get("extends")
        if isinstance(extends, dict):
            why = _outside(extends.get("file"), scope)
            if why is not None:
                yield name, f"extends the file {why}"


def _includes(model: Model, scope: Scope) -> Iterator[Finding]:
    for doc in (model.written, model.resolved):
        for entry in _items(doc.get("include")):
            paths: list[Any] = []
            if isinstance(entry, dict):
                paths += _items(entry.get("path"))
                paths += _items(entry.get("env_file"))
                paths += _items(entry.get("project_directory"))
            else:
                paths.append(entry)
            for path in paths:
                why = _outside(path, scope)
                if why is not None:
                    yield "include", f"includes {why}"


def _credential_specs(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        spec = service.get("credential_spec")
        if isinstance(spec, dict) and (_set(spec.get("file")) or _set(spec.get("registry"))):
            yield name, f"credential_spec {spec}"


# --- namespaces -------------------------------------------------------------------------


def _namespace(key: str, allowed: tuple[str, ...]) -> Find:
    """A namespace mode: ``host`` or ``container:<any>`` joins one Moorage did not make;
    ``service:<name>`` (this project) and the ``allowed`` values are fine."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for name, service in _services(model.resolved):
            value = service.get(key)
            mode = _mode(value)
            if value is None or mode in ("", *allowed) or mode.startswith("service:"):
                continue
            yield name, f"{key}: {value}"

    return find


# --- privileges ---------------------------------------------------------------------------


def _privileged(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        if _truthy(service.get("privileged")):
            yield name, "privileged: true"
        for hook in ("post_start", "pre_stop"):
            for entry in _items(service.get(hook)):
                if isinstance(entry, dict) and _truthy(entry.get("privileged")):
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


def _cap_add(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        for cap in _items(service.get("cap_add")):
            plain = str(cap).strip().upper().removeprefix("CAP_")
            if plain not in DEFAULT_CAPABILITIES:
                yield name, f"cap_add {cap}"


def _present(key: str) -> Find:
    """Any value of ``key`` (besides empty) is the power."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for name, service in _services(model.resolved):
            value = service.get(key)
            if _set(value) and value is not False:
                yield name, f"{key}: {value}"

    return find


def _gpus(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        if _set(service.get("gpus")):
            yield name, f"gpus: {service['gpus']}"
        deploy = service.get("deploy") if isinstance(service.get("deploy"), dict) else {}
        resources = (deploy or {}).get("resources") or {}
        reservations = resources.get("reservations") if isinstance(resources, dict) else None
        if isinstance(reservations, dict):
            for key in ("devices", "generic_resources"):
                if _set(reservations.get(key)):
                    yield name, f"deploy.resources.reservations.{key}"


def _security_opt(model: Model, scope: Scope) -> Iterator[Finding]:
    # Only no-new-privileges (either way) leaves confinement as it is; everything else
    # (apparmor/seccomp unconfined or a custom profile, label:disable or a label type,
    # systempaths=unconfined, writable-cgroups) relaxes or replaces it.
    for name, service in _services(model.resolved):
        for opt in _items(service.get("security_opt")):
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


def _sysctls(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        value = service.get("sysctls")
        pairs: Iterable[tuple[str, Any]]
        if isinstance(value, dict):
            pairs = value.items()
        else:
            pairs = (str(item).partition("=")[::2] for item in _items(value))
        for key, setting in pairs:
            if str(key).strip() not in SAFE_SYSCTLS:
                yield name, f"sysctls {key}={setting}"


def _oom_score_adj(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        value = service.get("oom_score_adj")
        try:
            negative = value is not None and int(value) < 0
        except (TypeError, ValueError):
            negative = True
        if negative:
            yield name, f"oom_score_adj: {value}"


def _isolation(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        value = service.get("isolation")
        if _set(value) and value != "default":
            yield name, f"isolation: {value}"


LOG_DRIVERS = ("json-file", "local", "none")


def _logging(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        logging = service.get("logging")
        driver = logging.get("driver") if isinstance(logging, dict) else None
        if driver not in (None, *LOG_DRIVERS):
            yield name, f"logging driver {driver!r}"


def _providers(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in _services(model.resolved):
        if _set(service.get("provider")):
            yield name, f"provider {service['provider']}"
        if _truthy(service.get("use_api_socket")):
            yield name, "use_api_socket: true (the Docker API socket)"
        if _set(service.get("models")):
            yield name, "models"
    if _set(model.resolved.get("models")):
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


def _ports(model: Model, scope: Scope) -> Iterator[Finding]:
    allowed = _unspecified(scope.publish_addr)
    for name, service in _services(model.resolved):
        for entry in _items(service.get("ports")):
            ip = _unspecified(_port_host_ip(entry))
            if ip != allowed:
                yield name, f"port {entry} published on {ip}, not on {scope.publish_addr}"


def _network_name(key: str, network: dict[str, Any]) -> str:
    external = network.get("external")
    if isinstance(external, dict) and external.get("name"):
        return str(external["name"])
    return str(network.get("name") or key)


def _foreign_networks(model: Model, scope: Scope) -> Iterator[Finding]:
    for key, network in _top(model.resolved, "networks"):
        named = _network_name(key, network)
        joins = _external(network) or _named_apart(key, network, scope)
        if joins and named not in scope.networks:
            yield f"networks.{key}", f"joins the network {named!r}, which Moorage does not own"


def _network_drivers(model: Model, scope: Scope) -> Iterator[Finding]:
    for key, network in _top(model.resolved, "networks"):
        driver = network.get("driver")
        if driver not in (None, "", "bridge"):
            yield f"networks.{key}", f"network driver {driver!r}"
        for attr in ("driver_opts", "ipam"):
            if _set(network.get(attr)):
                yield f"networks.{key}", f"{attr} {network[attr]}"
    for name, service in _services(model.resolved):
        attached = service.get("networks")
        for key, endpoint in attached.items() if isinstance(attached, dict) else ():
            if isinstance(endpoint, dict) and _set(endpoint.get("driver_opts")):
                yield name, f"driver_opts on network {key}: {endpoint['driver_opts']}"


# --- attributes nobody reviewed -------------------------------------------------------------

# Every attribute the rules above have read, plus those an operator may use because they
# stay inside the container or are plain resource limits. Anything else is unreviewed.
REVIEWED: dict[str, frozenset[str]] = {
    "": frozenset(
        {"version", "name", "services", "volumes", "networks", "secrets", "configs"}
        | {"include", "models"}
    ),
    "services": frozenset(
        {
            # Read by a rule above.
            *("volumes", "volumes_from", "env_file", "label_file", "extends", "credential_spec"),
            *("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup", "cgroup_parent"),
            *("privileged", "post_start", "pre_stop", "cap_add", "devices"),
            *("device_cgroup_rules", "gpus", "deploy", "security_opt", "sysctls"),
            *("oom_kill_disable", "oom_score_adj", "runtime", "isolation", "storage_opt"),
            *("logging", "provider", "use_api_socket", "models", "annotations", "ports"),
            # Inside the container, or a resource limit: fine for an operator.
            *("image", "command", "entrypoint", "environment", "working_dir", "user"),
            *("group_add", "init", "healthcheck", "restart", "stop_grace_period"),
            *("stop_signal", "labels", "hostname", "domainname", "dns", "dns_opt"),
            *("dns_search", "extra_hosts", "expose", "links", "external_links", "networks"),
            *("mac_address", "depends_on", "profiles", "secrets", "configs", "read_only"),
            *("tmpfs", "shm_size", "stdin_open", "tty", "ulimits", "cap_drop", "cpu_count"),
            *("cpu_percent", "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period"),
            *("cpu_rt_runtime", "cpus", "cpuset", "mem_limit", "mem_reservation"),
            *("mem_swappiness", "memswap_limit", "pids_limit", "blkio_config", "scale"),
            *("platform", "pull_policy", "pull_refresh_after", "container_name", "attach"),
            # Only `docker compose watch` reads it, and Moorage never runs watch.
            "develop",
        }
    ),
    "volumes": frozenset({"name", "driver", "driver_opts", "external", "labels"}),
    "networks": frozenset(
        {"name", "driver", "driver_opts", "ipam", "external", "internal", "attachable"}
        | {"enable_ipv4", "enable_ipv6", "labels"}
    ),
    "secrets": frozenset({"name", "file", "environment", "labels"}),
    "configs": frozenset({"name", "file", "environment", "content", "labels"}),
}


def _unreviewed(model: Model, scope: Scope) -> Iterator[Finding]:
    doc = model.resolved
    for key in doc:
        if key not in REVIEWED[""] and not str(key).startswith("x-"):
            yield str(key), f"top-level {key!r}"
    for section in ("services", "volumes", "networks", "secrets", "configs"):
        items = _services(doc) if section == "services" else _top(doc, section)
        for name, item in items:
            for key in item:
                if key not in REVIEWED[section] and not str(key).startswith("x-"):
                    where = name if section == "services" else f"{section}.{name}"
                    yield where, f"{key!r}, which this policy has not reviewed"


# --- the table ------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule(
        "bind_mount",
        "`volumes` of type bind (short or long syntax) whose source is not one of the "
        "workload's Moorage volumes; a bind with shared or slave propagation; npipe and "
        "cluster mounts",
        "the container reads and writes that host path as root: `/` is the whole host, "
        "`/var/run/docker.sock` is the Docker API",
        _bind_mounts,
    ),
    Rule(
        "volume_driver",
        "a top-level volume with a `driver` other than `local`, or any `driver_opts`",
        "`local` with `type: none, o: bind, device: /` bind-mounts any host path; nfs or "
        "cifs options make the host kernel mount a remote file system; other drivers are "
        "plugins running on the host",
        _volume_drivers,
    ),
    Rule(
        "external_volume",
        "a top-level volume that is `external` or carries its own `name`",
        "it is a volume this project did not create: another workload's data, or one an "
        "admin made with driver options",
        _foreign_volumes,
    ),
    Rule(
        "volumes_from",
        "`volumes_from: container:<name>`",
        "mounts every volume of a container outside the project (bind mounts included)",
        _volumes_from,
    ),
    Rule(
        "secrets_file",
        "a top-level secret whose `file` is outside the workload's directory",
        "Compose reads the host file and mounts it into the container: "
        "`/var/run/docker.sock` hands over the Docker API, `/etc/shadow` the host's hashes",
        _file_of("secrets"),
    ),
    Rule(
        "configs_file",
        "a top-level config whose `file` is outside the workload's directory",
        "as `secrets_file`: the host file is mounted into the container",
        _file_of("configs"),
    ),
    Rule(
        "env_file",
        "`env_file` paths outside the workload's directory, as written or resolved; an "
        "interpolated path",
        "Compose reads the host file into the container's environment",
        _service_files("env_file"),
    ),
    Rule(
        "label_file",
        "`label_file` paths outside the workload's directory",
        "Compose reads the host file into the container's labels, where `inspect` shows it",
        _service_files("label_file"),
    ),
    Rule(
        "extends_file",
        "`extends.file` outside the workload's directory, or interpolated",
        "Compose reads another file of the host, whose services bring their own powers "
        "(relative paths in it resolve from its directory)",
        _extends_files,
    ),
    Rule(
        "include",
        "`include` of files (or env files, or a project directory) outside the workload's "
        "directory, or interpolated",
        "as `extends_file`, for whole projects",
        _includes,
    ),
    Rule(
        "credential_spec",
        "`credential_spec` with a `file` or `registry`",
        "reads a host file or the host's registry for a managed service account",
        _credential_specs,
    ),
    Rule(
        "network_mode",
        "`network_mode` other than `none` or `service:<name>`: `host`, `bridge`, "
        "`container:<name>` or a network name",
        "`host` shares the host's network stack (every port on every interface, the "
        "host's loopback services); the others join networks Moorage does not own",
        _namespace("network_mode", ("none",)),
    ),
    Rule(
        "pid",
        "`pid: host` or `pid: container:<name>`",
        "sees and signals the host's (or another container's) processes; with ptrace, enters them",
        _namespace("pid", ("private",)),
    ),
    Rule(
        "ipc",
        "`ipc: host` or `ipc: container:<name>`",
        "shares the host's shared memory and semaphores",
        _namespace("ipc", ("none", "private", "shareable")),
    ),
    Rule(
        "uts",
        "`uts: host`",
        "shares the host's hostname; with privileges, changes it",
        _namespace("uts", ()),
    ),
    Rule(
        "userns_mode",
        "`userns_mode: host`",
        "leaves the user namespace remapping the daemon applies: root inside is root outside",
        _namespace("userns_mode", ()),
    ),
    Rule(
        "cgroup",
        "`cgroup: host`",
        "sees the host's cgroup tree",
        _namespace("cgroup", ("private",)),
    ),
    Rule(
        "cgroup_parent",
        "`cgroup_parent`",
        "places the container in a host cgroup of its choosing, outside Docker's limits",
        _present("cgroup_parent"),
    ),
    Rule(
        "privileged",
        "`privileged: true`, also on `post_start`/`pre_stop` hooks",
        "every capability and device, no seccomp or AppArmor: root in the container is "
        "root on the host",
        _privileged,
    ),
    Rule(
        "cap_add",
        "`cap_add` of a capability outside Docker's default set (or `ALL`)",
        "SYS_ADMIN mounts, SYS_MODULE loads kernel modules, SYS_PTRACE and the like reach "
        "past the container",
        _cap_add,
    ),
    Rule(
        "devices",
        "`devices`",
        "host devices in the container: a disk is every file on it",
        _present("devices"),
    ),
    Rule(
        "device_cgroup_rules",
        "`device_cgroup_rules`",
        "lets the container create and open host devices by number",
        _present("device_cgroup_rules"),
    ),
    Rule(
        "gpus",
        "`gpus`, `deploy.resources.reservations.devices` or `generic_resources`",
        "host devices (and their driver's runtime hooks) in the container",
        _gpus,
    ),
    Rule(
        "security_opt",
        "`security_opt` other than `no-new-privileges` (true or false)",
        "apparmor/seccomp unconfined or a custom profile, `label:disable`, "
        "`systempaths=unconfined` remove the confinement that keeps root inside",
        _security_opt,
    ),
    Rule(
        "sysctls",
        "`sysctls` outside Kubernetes' safe set",
        "other kernel parameters are not namespaced, or affect the host's network stack",
        _sysctls,
    ),
    Rule(
        "oom_kill_disable",
        "`oom_kill_disable: true`",
        "under memory pressure the host's processes are killed instead of the container's",
        lambda model, scope: (
            (name, "oom_kill_disable: true")
            for name, service in _services(model.resolved)
            if _truthy(service.get("oom_kill_disable"))
        ),
    ),
    Rule(
        "oom_score_adj",
        "a negative `oom_score_adj`",
        "makes the host's OOM killer pick the host's processes before the container's",
        _oom_score_adj,
    ),
    Rule(
        "runtime",
        "`runtime`",
        "picks another OCI runtime the daemon knows (nvidia, a less isolated one)",
        _present("runtime"),
    ),
    Rule(
        "isolation",
        "`isolation` other than `default`",
        "another isolation technology (process isolation on Windows hosts)",
        _isolation,
    ),
    Rule(
        "storage_opt",
        "`storage_opt`",
        "storage-driver options applied by the daemon on the host's disk",
        _present("storage_opt"),
    ),
    Rule(
        "annotations",
        "`annotations`",
        "passed to the OCI runtime and its hooks, some of which read them as settings",
        _present("annotations"),
    ),
    Rule(
        "logging",
        "a `logging` driver other than json-file, local or none",
        "the daemon, on the host, sends the output where the driver says (syslog or gelf to "
        "any address, the host's journal)",
        _logging,
    ),
    Rule(
        "provider",
        "`provider`, `use_api_socket`, `models` (service or top-level)",
        "Compose runs a host program for the service, or mounts the Docker API socket",
        _providers,
    ),
    Rule(
        "ports",
        "`ports` published on an address other than MOORAGE_PUBLISH_ADDR (no address means "
        "every address)",
        "the port answers on the host's other interfaces, past whatever fronts Moorage",
        _ports,
    ),
    Rule(
        "external_network",
        "a top-level network that is `external` or carries its own `name`, unless Moorage "
        "owns it (the stage network)",
        "joins containers Moorage does not run (another project's, or `host`)",
        _foreign_networks,
    ),
    Rule(
        "network_driver",
        "a network `driver` other than bridge, `driver_opts` (of a network, or of a "
        "service's attachment to one), `ipam`",
        "macvlan/ipvlan put the container on the host's LAN; bridge options and address "
        "ranges change the host's interfaces and routes; endpoint options reach the driver",
        _network_drivers,
    ),
    Rule(
        "unreviewed",
        "any attribute not in `REVIEWED` (top-level, service, volume, network, secret, config)",
        "Compose may have gained a way to reach the host since this table was written: "
        "an admin decides until a row says what it does",
        _unreviewed,
    ),
)


def before_compose(written: dict[str, Any], scope: Scope) -> list[HostPower]:
    """The powers the file as written asks for by naming host files Compose would read
    while resolving it (``env_file``, ``label_file``, ``extends.file``, ``include``).

    Judged before Compose runs: the read itself is the power, and Compose's answer (an
    error quoting the file, say) must not show an operator what a host file holds.
    """
    return review(Model({}, written), scope)


def review(model: Model, scope: Scope) -> list[HostPower]:
    """Every host power the model asks for, in table order (empty: an operator may run it)."""
    found: list[HostPower] = []
    for rule in RULES:
        for where, detail in rule.find(model, scope):
            if scope.directory:  # where it was resolved is no part of what it asks
                detail = detail.replace(os.path.normpath(scope.directory), ".")
            power = HostPower(rule.name, where, detail)
            if power not in found:
                found.append(power)
    return found


# --- the image kind's container, as a Compose service ---------------------------------------


def service_of(spec: ContainerSpec) -> dict[str, Any]:
    """A ``ContainerSpec`` as the Compose model, so one table judges both kinds.

    Every field of ``ContainerSpec`` is written here (a unit test holds it to that): a
    field added to the spec must say what it is in Compose's terms.
    """
    service = {
        "container_name": spec.name,
        "image": spec.image,
        "labels": dict(spec.labels),
        "networks": {spec.network: {"aliases": list(spec.aliases)}},
        "command": list(spec.command) if spec.command is not None else None,
        "environment": dict(spec.env),
        "ports": [
            {
                "target": p.container,
                "published": p.host,
                "protocol": p.protocol,
                "host_ip": p.host_ip,
            }
            for p in spec.ports
        ],
        "volumes": [
            {"type": "bind", "source": m.source, "target": m.target, "read_only": m.read_only}
            for m in spec.mounts
        ],
        "init": spec.init,
        "stop_grace_period": f"{spec.stop_timeout}s",
        "restart": spec.restart_policy,
    }
    return {
        "services": {"container": service},
        "networks": {spec.network: {"external": True, "name": spec.network}},
    }


SPEC_FIELDS = frozenset(
    {"name", "image", "labels", "network", "aliases", "command", "env", "ports", "mounts"}
    | {"init", "stop_timeout", "restart_policy"}
)
"""The ``ContainerSpec`` fields ``service_of`` writes."""
