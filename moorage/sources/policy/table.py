"""The table: every host power a workload may ask for only with an admin, one ``Rule`` per
row (``RULES``), the attributes the rows have reviewed (``REVIEWED``), and ``review``,
which runs the table over a model. Pure."""

from __future__ import annotations

import os.path
from collections.abc import Iterator
from typing import Any

from moorage.plugins.spec import HostPower
from moorage.sources.policy import compose_rules, rules
from moorage.sources.policy.model import (
    Finding,
    Model,
    Rule,
    Scope,
    each_entry,
    each_service,
    truthy,
)

# --- attributes nobody reviewed -------------------------------------------------------------

# Every attribute the rules have read (``rules``, ``compose_rules``), plus those an operator
# may use because they stay inside the container or are plain resource limits. Anything
# else is unreviewed.
REVIEWED: dict[str, frozenset[str]] = {
    "": frozenset(
        {"version", "name", "services", "volumes", "networks", "secrets", "configs"}
        | {"include", "models"}
    ),
    "services": frozenset(
        {
            # Read by a rule.
            *("volumes", "volumes_from", "env_file", "label_file", "extends", "credential_spec"),
            *("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup", "cgroup_parent"),
            *("privileged", "post_start", "pre_stop", "cap_add", "devices"),
            *("device_cgroup_rules", "gpus", "deploy", "security_opt", "sysctls"),
            *("oom_kill_disable", "oom_score_adj", "runtime", "isolation", "storage_opt"),
            *("logging", "provider", "use_api_socket", "models", "annotations", "ports"),
            *("ulimits", "cpu_rt_runtime"),
            # Inside the container, or a resource limit: fine for an operator.
            *("image", "command", "entrypoint", "environment", "working_dir", "user"),
            *("group_add", "init", "healthcheck", "restart", "stop_grace_period"),
            *("stop_signal", "labels", "hostname", "domainname", "dns", "dns_opt"),
            *("dns_search", "extra_hosts", "expose", "links", "external_links", "networks"),
            *("mac_address", "depends_on", "profiles", "secrets", "configs", "read_only"),
            *("tmpfs", "shm_size", "stdin_open", "tty", "cap_drop", "cpu_count"),
            *("cpu_percent", "cpu_shares", "cpu_quota", "cpu_period", "cpus", "cpuset"),
            *("mem_limit", "mem_reservation", "cpu_rt_period"),
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
        items = each_service(doc) if section == "services" else each_entry(doc, section)
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
        rules.bind_mounts,
    ),
    Rule(
        "volume_driver",
        "a top-level volume with a `driver` other than `local`, or any `driver_opts`",
        "`local` with `type: none, o: bind, device: /` bind-mounts any host path; nfs or "
        "cifs options make the host kernel mount a remote file system; other drivers are "
        "plugins running on the host",
        rules.volume_drivers,
    ),
    Rule(
        "external_volume",
        "a top-level volume that is `external` or carries its own `name`",
        "it is a volume this project did not create: another workload's data, or one an "
        "admin made with driver options",
        rules.foreign_volumes,
    ),
    Rule(
        "volumes_from",
        "`volumes_from: container:<name>`",
        "mounts every volume of a container outside the project (bind mounts included)",
        rules.volumes_from,
    ),
    Rule(
        "secrets_file",
        "a top-level secret whose `file` is outside the workload's directory",
        "Compose reads the host file and mounts it into the container: "
        "`/var/run/docker.sock` hands over the Docker API, `/etc/shadow` the host's hashes",
        compose_rules.file_of("secrets"),
    ),
    Rule(
        "configs_file",
        "a top-level config whose `file` is outside the workload's directory",
        "as `secrets_file`: the host file is mounted into the container",
        compose_rules.file_of("configs"),
    ),
    Rule(
        "env_file",
        "`env_file` paths outside the workload's directory, as written or resolved; an "
        "interpolated path",
        "Compose reads the host file into the container's environment",
        compose_rules.service_files("env_file"),
    ),
    Rule(
        "label_file",
        "`label_file` paths outside the workload's directory",
        "Compose reads the host file into the container's labels, where `inspect` shows it",
        compose_rules.service_files("label_file"),
    ),
    Rule(
        "extends_file",
        "`extends.file` outside the workload's directory, or interpolated",
        "Compose reads another file of the host, whose services bring their own powers "
        "(relative paths in it resolve from its directory)",
        compose_rules.extends_files,
    ),
    Rule(
        "include",
        "`include` of files (or env files, or a project directory) outside the workload's "
        "directory, remote (a git or OCI address), or interpolated",
        "as `extends_file`, for whole projects",
        compose_rules.includes,
    ),
    Rule(
        "credential_spec",
        "`credential_spec` with a `file` or `registry`",
        "reads a host file or the host's registry for a managed service account",
        compose_rules.credential_specs,
    ),
    Rule(
        "network_mode",
        "`network_mode` other than `none` or `service:<name>`: `host`, `bridge`, "
        "`container:<name>` or a network name",
        "`host` shares the host's network stack (every port on every interface, the "
        "host's loopback services); the others join networks Moorage does not own",
        rules.namespace("network_mode", ("none",)),
    ),
    Rule(
        "pid",
        "`pid: host` or `pid: container:<name>`",
        "sees and signals the host's (or another container's) processes; with ptrace, enters them",
        rules.namespace("pid", ("private",)),
    ),
    Rule(
        "ipc",
        "`ipc: host` or `ipc: container:<name>`",
        "shares the host's shared memory and semaphores",
        rules.namespace("ipc", ("none", "private", "shareable")),
    ),
    Rule(
        "uts",
        "`uts: host`",
        "shares the host's hostname; with privileges, changes it",
        rules.namespace("uts", ()),
    ),
    Rule(
        "userns_mode",
        "`userns_mode: host`",
        "leaves the user namespace remapping the daemon applies: root inside is root outside",
        rules.namespace("userns_mode", ()),
    ),
    Rule(
        "cgroup",
        "`cgroup: host`",
        "sees the host's cgroup tree",
        rules.namespace("cgroup", ("private",)),
    ),
    Rule(
        "cgroup_parent",
        "`cgroup_parent`",
        "places the container in a host cgroup of its choosing, outside Docker's limits",
        rules.present("cgroup_parent"),
    ),
    Rule(
        "privileged",
        "`privileged: true`, also on `post_start`/`pre_stop` hooks",
        "every capability and device, no seccomp or AppArmor: root in the container is "
        "root on the host",
        rules.privileged,
    ),
    Rule(
        "cap_add",
        "`cap_add` of a capability outside Docker's default set (or `ALL`)",
        "SYS_ADMIN mounts, SYS_MODULE loads kernel modules, SYS_PTRACE and the like reach "
        "past the container",
        rules.cap_add,
    ),
    Rule(
        "devices",
        "`devices`",
        "host devices in the container: a disk is every file on it",
        rules.present("devices"),
    ),
    Rule(
        "device_cgroup_rules",
        "`device_cgroup_rules`",
        "lets the container create and open host devices by number",
        rules.present("device_cgroup_rules"),
    ),
    Rule(
        "gpus",
        "`gpus`, `deploy.resources.reservations.devices` or `generic_resources`",
        "host devices (and their driver's runtime hooks) in the container",
        rules.gpus,
    ),
    Rule(
        "security_opt",
        "`security_opt` other than `no-new-privileges` (true or false)",
        "apparmor/seccomp unconfined or a custom profile, `label:disable`, "
        "`systempaths=unconfined` remove the confinement that keeps root inside",
        rules.security_opt,
    ),
    Rule(
        "sysctls",
        "`sysctls` outside Kubernetes' safe set",
        "other kernel parameters are not namespaced, or affect the host's network stack",
        rules.sysctls,
    ),
    Rule(
        "oom_kill_disable",
        "`oom_kill_disable: true`",
        "under memory pressure the host's processes are killed instead of the container's",
        lambda model, scope: (
            (name, "oom_kill_disable: true")
            for name, service in each_service(model.resolved)
            if truthy(service.get("oom_kill_disable"))
        ),
    ),
    Rule(
        "priority",
        "`ulimits` of `rtprio` or `nice` above 0; `cpu_rt_runtime` above 0",
        "an unprivileged process may then take real-time or raised priority (the limit "
        "stands in for CAP_SYS_NICE): a SCHED_FIFO busy loop holds a host core, a nice -20 "
        "one starves the host's own processes",
        rules.priorities,
    ),
    Rule(
        "oom_score_adj",
        "a negative `oom_score_adj`",
        "makes the host's OOM killer pick the host's processes before the container's",
        rules.oom_score_adj,
    ),
    Rule(
        "runtime",
        "`runtime`",
        "picks another OCI runtime the daemon knows (nvidia, a less isolated one)",
        rules.present("runtime"),
    ),
    Rule(
        "isolation",
        "`isolation` other than `default`",
        "another isolation technology (process isolation on Windows hosts)",
        rules.isolation,
    ),
    Rule(
        "storage_opt",
        "`storage_opt`",
        "storage-driver options applied by the daemon on the host's disk",
        rules.present("storage_opt"),
    ),
    Rule(
        "annotations",
        "`annotations`",
        "passed to the OCI runtime and its hooks, some of which read them as settings",
        rules.present("annotations"),
    ),
    Rule(
        "logging",
        "a `logging` driver other than json-file, local or none",
        "the daemon, on the host, sends the output where the driver says (syslog or gelf to "
        "any address, the host's journal)",
        rules.log_driver,
    ),
    Rule(
        "provider",
        "`provider`, `use_api_socket`, `models` (service or top-level)",
        "Compose runs a host program for the service, or mounts the Docker API socket",
        rules.providers,
    ),
    Rule(
        "ports",
        "`ports` published on an address other than MOORAGE_PUBLISH_ADDR (no address means "
        "every address)",
        "the port answers on the host's other interfaces, past whatever fronts Moorage",
        rules.ports,
    ),
    Rule(
        "external_network",
        "a top-level network that is `external` or carries its own `name`, unless Moorage "
        "owns it (the stage network)",
        "joins containers Moorage does not run (another project's, or `host`)",
        rules.foreign_networks,
    ),
    Rule(
        "network_driver",
        "a network `driver` other than bridge, `driver_opts` (of a network, or of a "
        "service's attachment to one), `ipam`",
        "macvlan/ipvlan put the container on the host's LAN; bridge options and address "
        "ranges change the host's interfaces and routes; endpoint options reach the driver",
        rules.network_drivers,
    ),
    Rule(
        "moorage_label",
        "a label whose key starts with `moorage.` on a service, volume, network, secret or config",
        "Moorage finds, stops, removes and re-pins containers by these labels, as root: a "
        "forged `moorage.pin.<n>` has Moorage bind-mount the host path it names when it "
        "starts the container",
        rules.moorage_labels,
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
