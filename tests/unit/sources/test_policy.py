"""The host-power table, row by row, on models as Compose v1 and v2 print them (no Docker).

``CASES`` holds one entry per row of ``RULES`` (a test fails when a row has none),
each with the model forms that must trip it; ``ALLOWED`` is what an operator may run.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from moorage.plugins.spec import HostPower
from moorage.runtime.engine import BindMount, ContainerSpec, PortBinding
from moorage.sources.policy.image_service import SPEC_FIELDS, service_of
from moorage.sources.policy.model import Model, Scope
from moorage.sources.policy.table import RULES, before_compose, review
from tests.conftest import REPO

DIR = "/srv/moorage/compose/wl_0123456789abcdef"
STAGE_NET = "moorage_shop_production"
SCOPE = Scope(directory=DIR, publish_addr="127.0.0.1", networks=frozenset({STAGE_NET}))


def svc(written: dict[str, Any] | None = None, **attrs: Any) -> Model:
    """A one-service model (``web``) with ``attrs``; ``written`` is the file as written."""
    return Model({"services": {"web": {"image": "x", **attrs}}}, written or {})


def top(**sections: Any) -> Model:
    return Model({"services": {"web": {"image": "x"}}, **sections})


# row -> the models that must trip it, each with where it is asked and a part of its detail.
CASES: dict[str, list[tuple[Model, str, str]]] = {
    "bind_mount": [
        (svc(volumes=["/:/host:rw"]), "web", "'/'"),  # v1 short syntax
        (
            svc(volumes=[{"type": "bind", "source": "/var/run/docker.sock", "target": "/s"}]),
            "web",
            "docker.sock",
        ),
        (svc(volumes=[f"{DIR}/data:/data:rw"]), "web", "./data"),  # even its own directory
        (svc(volumes=[{"type": "npipe", "source": r"\\.\pipe\x", "target": "/p"}]), "web", "npipe"),
    ],
    "volume_driver": [
        (
            top(
                volumes={
                    "data": {
                        "driver": "local",
                        "driver_opts": {"type": "none", "o": "bind", "device": "/"},
                    }
                }
            ),
            "volumes.data",
            "device=/",
        ),
        (top(volumes={"data": {"driver": "rexray/ebs"}}), "volumes.data", "rexray"),
    ],
    "external_volume": [
        (top(volumes={"data": {"external": True, "name": "other_db"}}), "volumes.data", "other_db"),
        (top(volumes={"data": {"name": "moorage_other_data"}}), "volumes.data", "moorage_other"),
    ],
    "volumes_from": [(svc(volumes_from=["container:db:ro"]), "web", "container:db")],
    "secrets_file": [
        (top(secrets={"s": {"file": "/var/run/docker.sock"}}), "secrets.s", "docker.sock"),
        (top(secrets={"s": {"file": f"{DIR}/../wl_other/moorage.env"}}), "secrets.s", "wl_other"),
    ],
    "configs_file": [(top(configs={"c": {"file": "/etc/shadow"}}), "configs.c", "/etc/shadow")],
    "env_file": [
        (svc(env_file=["/etc/shadow"]), "web", "/etc/shadow"),  # as v2 may print it
        (svc({"services": {"web": {"env_file": "${E}"}}}), "web", "interpolated"),  # as written
        (svc({"services": {"web": {"env_file": [{"path": "../x.env"}]}}}), "web", "../x.env"),
    ],
    "label_file": [(svc(label_file="/etc/passwd"), "web", "/etc/passwd")],
    "extends_file": [
        (
            svc({"services": {"web": {"extends": {"file": "/srv/base.yml", "service": "b"}}}}),
            "web",
            "/srv/base.yml",
        ),
        (
            svc({"services": {"web": {"extends": {"file": "${F}", "service": "b"}}}}),
            "web",
            "interpolated",
        ),
    ],
    "include": [
        (Model({"services": {}}, {"include": ["/srv/other/compose.yml"]}), "include", "/srv"),
        (
            Model({"services": {}}, {"include": [{"path": ["a.yml"], "env_file": "/e"}]}),
            "include",
            "/e",
        ),
        # Compose v2 fetches these (git runs as root, with the variables the file names).
        (Model({"services": {}}, {"include": ["git@host:repo.git"]}), "include", "remote"),
        (Model({"services": {}}, {"include": ["https://x/y.git#main"]}), "include", "remote"),
        (Model({"services": {}}, {"include": ["oci://reg/app:1"]}), "include", "remote"),
        (Model({"services": {}}, {"include": [{"path": "repo.git"}]}), "include", "remote"),
    ],
    "credential_spec": [(svc(credential_spec={"file": "spec.json"}), "web", "spec.json")],
    "network_mode": [
        (svc(network_mode="host"), "web", "host"),
        (svc(network_mode="container:moorage-proxy"), "web", "container:"),
        (svc(network_mode="bridge"), "web", "bridge"),
    ],
    "pid": [(svc(pid="host"), "web", "host"), (svc(pid="container:abc"), "web", "container:")],
    "ipc": [(svc(ipc="host"), "web", "host")],
    "uts": [(svc(uts="host"), "web", "host")],
    "userns_mode": [(svc(userns_mode="host"), "web", "host")],
    "cgroup": [(svc(cgroup="host"), "web", "host")],
    "cgroup_parent": [(svc(cgroup_parent="/system.slice"), "web", "system.slice")],
    "privileged": [
        (svc(privileged=True), "web", "privileged"),
        (svc(privileged="true"), "web", "privileged"),  # interpolated, as a string
        (svc(post_start=[{"command": "id", "privileged": True}]), "web", "post_start"),
    ],
    "cap_add": [
        (svc(cap_add=["SYS_ADMIN"]), "web", "SYS_ADMIN"),
        (svc(cap_add=["ALL"]), "web", "ALL"),
    ],
    "devices": [(svc(devices=["/dev/sda:/dev/sda"]), "web", "/dev/sda")],
    "device_cgroup_rules": [(svc(device_cgroup_rules=["c 1:3 mr"]), "web", "c 1:3")],
    "gpus": [
        (svc(gpus="all"), "web", "gpus"),
        (
            svc(deploy={"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}),
            "web",
            "reservations.devices",
        ),
    ],
    "security_opt": [
        (svc(security_opt=["apparmor:unconfined"]), "web", "apparmor"),
        (svc(security_opt=["seccomp=unconfined"]), "web", "seccomp"),
        (svc(security_opt=["label:disable"]), "web", "label"),
        (svc(security_opt=["systempaths=unconfined"]), "web", "systempaths"),
    ],
    "sysctls": [
        (svc(sysctls={"kernel.msgmax": "65536"}), "web", "kernel.msgmax"),
        (svc(sysctls=["net.ipv4.ip_forward=1"]), "web", "ip_forward"),
    ],
    "oom_kill_disable": [(svc(oom_kill_disable=True), "web", "oom_kill_disable")],
    "oom_score_adj": [(svc(oom_score_adj=-900), "web", "-900")],
    "runtime": [(svc(runtime="nvidia"), "web", "nvidia")],
    "isolation": [(svc(isolation="process"), "web", "process")],
    "storage_opt": [(svc(storage_opt={"size": "1G"}), "web", "size")],
    "annotations": [(svc(annotations={"run.oci.keep_original_groups": "1"}), "web", "run.oci")],
    "logging": [
        (
            svc(logging={"driver": "syslog", "options": {"syslog-address": "tcp://127.0.0.1:22"}}),
            "web",
            "syslog",
        ),
    ],
    "provider": [
        (svc(provider={"type": "awesomecloud"}), "web", "awesomecloud"),
        (svc(use_api_socket=True), "web", "API socket"),
    ],
    "ports": [
        (svc(ports=["0.0.0.0:18999:8080/tcp"]), "web", "0.0.0.0"),  # v1 short syntax
        (svc(ports=["8080"]), "web", "0.0.0.0"),  # no address: every address
        (svc(ports=[{"target": 80, "published": "8080"}]), "web", "0.0.0.0"),
        (
            svc(ports=[{"target": 80, "published": "8080", "host_ip": "192.0.2.7"}]),
            "web",
            "192.0.2.7",
        ),
        (svc(ports=["::1:9000:9000/udp"]), "web", "::1"),  # v1 prints IPv6 unbracketed
    ],
    "external_network": [
        (top(networks={"n": {"external": True, "name": "bridge"}}), "networks.n", "bridge"),
        (top(networks={"n": {"name": "moorage_other_production"}}), "networks.n", "other"),
        (top(networks={"n": {"external": {"name": "host"}}}), "networks.n", "host"),
    ],
    "network_driver": [
        (
            top(networks={"n": {"driver": "macvlan", "driver_opts": {"parent": "eth0"}}}),
            "networks.n",
            "macvlan",
        ),
        (
            top(networks={"n": {"ipam": {"config": [{"subnet": "10.0.0.0/8"}]}}}),
            "networks.n",
            "ipam",
        ),
        (
            svc(
                networks={"default": {"driver_opts": {"com.docker.network.endpoint.sysctls": "x"}}}
            ),
            "web",
            "endpoint.sysctls",
        ),
    ],
    "priority": [
        (svc(ulimits={"rtprio": 99}), "web", "rtprio: 99"),
        (svc(ulimits={"nofile": 1024, "nice": {"soft": 40, "hard": 40}}), "web", "nice"),
        (svc(ulimits={"rtprio": {"soft": 0, "hard": 1}}), "web", "rtprio"),
        (svc(ulimits={"nice": "many"}), "web", "nice"),
        (svc(cpu_rt_runtime=950000), "web", "cpu_rt_runtime"),
    ],
    "moorage_label": [
        (svc({"services": {}}, labels={"moorage.pin.0": '{"source": "/"}'}), "web", "pin.0"),
        (svc({"services": {}}, labels=["moorage.drill=d1", "app=x"]), "web", "moorage.drill"),
        (svc({"services": {}}, labels={" Moorage.Workload": "w"}), "web", "Workload"),
        (
            Model({"volumes": {"v": {"labels": ["moorage.workload=w"]}}}, {"services": {}}),
            "volumes.v",
            "moorage.workload",
        ),
        (
            Model({"networks": {"n": {"labels": {"moorage.stage": "s"}}}}, {"services": {}}),
            "networks.n",
            "moorage.stage",
        ),
    ],
    "unreviewed": [
        (svc(future_power=True), "web", "future_power"),
        (Model({"services": {}, "plugins": {}}), "plugins", "top-level"),
        (top(volumes={"data": {"mystery": 1}}), "volumes.data", "mystery"),
    ],
}


def test_every_row_has_cases() -> None:
    assert set(CASES) == {rule.name for rule in RULES}
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.checks and rule.why, rule.name


def test_the_code_map_lists_every_row() -> None:
    page = (REPO / "docs" / "CODEMAPS" / "policy.md").read_text()
    assert set(re.findall(r"^\| `([a-z_]+)` \|", page, re.M)) == {r.name for r in RULES}


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_each_row_trips_on_its_power(rule: str) -> None:
    for model, where, fragment in CASES[rule]:
        found = review(model, SCOPE)
        mine = [p for p in found if p.power == rule]
        assert mine, (rule, model)
        assert any(p.where == where and fragment in p.detail for p in mine), (rule, found)


# What an operator may run: Moorage's own files, the stage network, limits, health checks.
ALLOWED = Model(
    {
        "name": "moorage_shop_production_web",
        "version": "3.9",
        "services": {
            "web": {
                "image": "registry.example.com/team/web:1.4",
                "command": ["httpd", "-f"],
                "environment": {"A": "1"},
                "ports": ["127.0.0.1:18080:8080/tcp", {"target": 81, "host_ip": "127.0.0.1"}],
                "volumes": ["data:/data:rw", "anon", {"type": "tmpfs", "target": "/t"}],
                "healthcheck": {"test": ["CMD", "true"], "interval": "5s"},
                "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "256M"}}},
                "mem_limit": "256m",
                "pids_limit": 100,
                "ulimits": {"nofile": 1024, "nice": 0, "rtprio": {"soft": 0, "hard": 0}},
                "cpu_rt_runtime": 0,
                "cpu_rt_period": 1000000,
                "cap_drop": ["ALL"],
                "cap_add": ["NET_BIND_SERVICE", "CAP_CHOWN"],
                "security_opt": ["no-new-privileges:true", "no-new-privileges=false"],
                "sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"},
                "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
                "networks": {"default": None, "stage": {"aliases": ["web"]}},
                "secrets": ["s"],
                "env_file": [f"{DIR}/moorage.env"],
                "read_only": True,
                "oom_score_adj": 100,
                "privileged": False,
                "volumes_from": ["service:db:ro"],
                "init": True,
                "restart": "unless-stopped",
                "x-note": "extensions are ignored",
            },
            "db": {"image": "postgres:16", "network_mode": "service:web", "ipc": "shareable"},
        },
        "volumes": {"data": {"labels": {"a": "b"}}},
        "networks": {"stage": {"external": True, "name": STAGE_NET}, "back": {"internal": True}},
        "secrets": {"s": {"file": f"{DIR}/moorage.env"}},
        "configs": {"c": {"content": "hello"}, "d": {"environment": "A"}},
    },
    {"services": {"web": {"env_file": "moorage.env", "extends": {"service": "db"}}}},
)


def test_what_an_operator_may_use_asks_for_nothing() -> None:
    assert review(ALLOWED, SCOPE) == []


def test_labels_outside_moorages_namespace_and_the_image_kinds_own_ask_for_nothing() -> None:
    """Only a Compose file's labels are judged: the image kind's container carries Moorage's
    labels, which Moorage wrote."""
    written = {"services": {}}
    for labels in ({"app": "x", "moorage": "y", "com.moorage.x": "z"}, ["moorage=1"], None):
        assert not review(svc(written, labels=labels), SCOPE), labels
    assert not review(svc(labels={"moorage.workload": "w", "moorage.pin.0": "{}"}), SCOPE)


def test_a_port_on_every_address_is_fine_when_that_is_the_publish_address() -> None:
    scope = dataclasses.replace(SCOPE, publish_addr="0.0.0.0")
    assert review(svc(ports=["8080", "0.0.0.0:80:80"]), scope) == []


def test_the_names_compose_v2_gives_the_projects_own_objects_are_its_own() -> None:
    scope = dataclasses.replace(SCOPE, project="moorage-check-0123")
    v2 = top(
        name="moorage-check-0123",
        networks={"default": {"name": "moorage-check-0123_default"}},
        volumes={"data": {"name": "moorage-check-0123_data"}},
    )
    assert review(v2, scope) == []
    # Another key's name, or a name of its own, is not.
    other = top(networks={"default": {"name": "moorage-check-0123_other"}})
    assert [p.power for p in review(other, scope)] == ["external_network"]


def test_binds_inside_the_workloads_moorage_volumes_are_its_own() -> None:
    scope = dataclasses.replace(SCOPE, mounts=("/srv/moorage/volumes/shop/production/db",))
    inside = svc(volumes=["/srv/moorage/volumes/shop/production/db/pg:/var/lib/pg:rw"])
    assert review(inside, scope) == []
    sibling = svc(volumes=["/srv/moorage/volumes/shop/production/db2:/x:rw"])
    assert [p.power for p in review(sibling, scope)] == ["bind_mount"]
    escape = svc(volumes=["/srv/moorage/volumes/shop/production/db/../../..:/x:rw"])
    assert [p.power for p in review(escape, scope)] == ["bind_mount"]


def test_findings_do_not_depend_on_where_the_model_was_resolved() -> None:
    one = review(svc(volumes=[f"{DIR}/data:/d:rw"]), SCOPE)
    other_dir = "/tmp/moorage-compose-abc"
    other = review(
        svc(volumes=[f"{other_dir}/data:/d:rw"]), dataclasses.replace(SCOPE, directory=other_dir)
    )
    assert (
        one
        == other
        == [
            HostPower(
                "bind_mount", "web", "read-write bind mount of the host path './data' at '/d'"
            )
        ]
    )


@pytest.mark.parametrize(
    ("read_only", "read_write"),
    [
        ("/srv/data:/d:ro", "/srv/data:/d"),
        ("/srv/data:/d:ro,z", "/srv/data:/d:rw,z"),
        (
            {"type": "bind", "source": "/srv/data", "target": "/d", "read_only": True},
            {"type": "bind", "source": "/srv/data", "target": "/d", "read_only": False},
        ),
    ],
)
def test_a_read_only_bind_is_not_the_same_power_as_a_read_write_one(
    read_only: Any, read_write: Any
) -> None:
    """An admin's grant of a read-only host bind does not cover the same path mounted
    read-write (an operator turned one into the other and wrote to the host)."""
    (ro,) = review(svc(volumes=[read_only]), SCOPE)
    (rw,) = review(svc(volumes=[read_write]), SCOPE)
    assert ro.power == rw.power == "bind_mount"
    assert ro != rw
    assert ro.detail.startswith("read-only ") and rw.detail.startswith("read-write ")


# --- the image kind: its container spec, written as one Compose service ---------------


def spec(**changes: Any) -> ContainerSpec:
    base = ContainerSpec(
        name="moorage_shop_production_web_12345678",
        image="moorage-test/httpd:1",
        labels={"moorage.workload": "wl_1"},
        network=STAGE_NET,
        aliases=("web",),
        command=("httpd", "-f"),
        env={"A": "1"},
        ports=(PortBinding(8080, 18080, "tcp", "127.0.0.1"),),
        mounts=(BindMount("/srv/moorage/volumes/shop/production/web/data", "/data"),),
    )
    return dataclasses.replace(base, **changes)


IMAGE_SCOPE = Scope(
    directory="",
    publish_addr="127.0.0.1",
    mounts=("/srv/moorage/volumes/shop/production/web/data",),
    networks=frozenset({STAGE_NET}),
)


def test_every_container_spec_field_is_written_as_compose() -> None:
    assert {f.name for f in dataclasses.fields(ContainerSpec)} == SPEC_FIELDS


def test_the_spec_moorage_builds_asks_for_nothing() -> None:
    assert review(Model(service_of(spec())), IMAGE_SCOPE) == []


@pytest.mark.parametrize(
    ("changes", "power"),
    [
        ({"mounts": (BindMount("/", "/host"),)}, "bind_mount"),
        ({"ports": (PortBinding(8080, 18080, "tcp", "0.0.0.0"),)}, "ports"),
        ({"network": "bridge"}, "external_network"),
    ],
    ids=["mount outside its volumes", "port on every address", "a network not its own"],
)
def test_a_spec_reaching_the_host_is_caught(changes: dict[str, Any], power: str) -> None:
    found = review(Model(service_of(spec(**changes))), IMAGE_SCOPE)
    assert [p.power for p in found] == [power]


def test_host_files_compose_would_read_are_judged_on_the_file_as_written() -> None:
    written = {
        "include": ["../other/compose.yml"],
        "services": {
            "web": {
                "image": "x",
                "env_file": ["moorage.env", "/etc/shadow"],
                "extends": {"file": "${BASE}", "service": "b"},
                "privileged": True,  # not a file read: judged on the resolved model
            }
        },
    }
    found = before_compose(written, SCOPE)
    assert [(p.power, p.where) for p in found] == [
        ("env_file", "web"),
        ("extends_file", "web"),
        ("include", "include"),
    ]
    assert before_compose({"services": {"web": {"env_file": "./moorage.env"}}}, SCOPE) == []


@pytest.mark.parametrize("value", [None, "", "none", "service:db"])
def test_a_network_mode_of_its_own_asks_for_nothing(value: Any) -> None:
    assert review(svc(network_mode=value), SCOPE) == []
