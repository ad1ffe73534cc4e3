"""The host-power policy through the API: a corpus of hostile Compose files and image
configs, one per row of ``sources/policy/table.py``, each also hidden behind interpolation
where the syntax allows (``${X:-harmless}`` in the file, the hostile value in the env).

An operator gets 403 ``needs_admin`` naming the service and the power, and nothing is
created or changed (no row, no env, no container); an admin is allowed, and the audit row
of the change names the power. Files the installed Compose cannot read at all (v1 knows
no ``uts``, ``include``...) are 422 for everyone, and nothing is created either.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from moorage.runtime.compose import ComposeRunner
from moorage.sources.compose.deploy import project_name
from moorage.sources.policy.table import RULES
from tests.conftest import Server, assert_error, unique

STAGE = "production"
IMAGE = "moorage-test/httpd:1"
COMPOSE_V2 = ComposeRunner().command()[-1] == "compose"


@dataclass(frozen=True)
class Case:
    power: str
    service: str  # where the power is asked, as the error names it
    body: str  # the YAML below `services: web:` (indented by 4), then top-level sections
    hidden: dict[str, str] | None = None  # the env that turns `${X:-...}` hostile
    v2_only: bool = False  # Compose v1 does not know the attribute

    def text(self) -> str:
        return f"services:\n  web:\n    image: {IMAGE}\n{self.body}"


def c(power: str, body: str, service: str = "web", **kw: Any) -> Case:
    return Case(power, service, body, **kw)


NAMED = "volumes:\n  data: {}\n"
CASES: list[Case] = [
    c("bind_mount", "    volumes:\n      - /:/host\n"),
    c("bind_mount", f"    volumes:\n      - ${{X:-data}}:/host\n{NAMED}", hidden={"X": "/"}),
    c(
        "bind_mount",
        "    volumes:\n      - type: bind\n        source: /var/run/docker.sock\n"
        "        target: /s\n",
    ),
    c(
        "volume_driver",
        "    volumes:\n      - data:/data\nvolumes:\n  data:\n    driver: local\n"
        "    driver_opts: {type: none, o: bind, device: /}\n",
        service="volumes.data",
    ),
    c(
        "volume_driver",
        "    volumes:\n      - data:/data\nvolumes:\n  data:\n    driver: ${X:-local}\n",
        service="volumes.data",
        hidden={"X": "rexray/ebs"},
    ),
    c(
        "external_volume",
        "    volumes:\n      - data:/data\nvolumes:\n  data:\n    external: true\n"
        "    name: someone-elses\n",
        service="volumes.data",
    ),
    c("volumes_from", "    volumes_from:\n      - container:moorage-proxy\n"),
    c(
        "volumes_from",
        "    volumes_from:\n      - ${X:-db}\n  db:\n    image: " + IMAGE + "\n",
        hidden={"X": "container:moorage-proxy"},
    ),
    c(
        "secrets_file",
        "    secrets: [s]\nsecrets:\n  s:\n    file: /var/run/docker.sock\n",
        service="secrets.s",
    ),
    c(
        "secrets_file",
        "    secrets: [s]\nsecrets:\n  s:\n    file: ${X:-./moorage.env}\n",
        service="secrets.s",
        hidden={"X": "/etc/shadow"},
    ),
    # The workload's own directory, whole: its env file and Moorage's override with it.
    c("secrets_file", "    secrets: [s]\nsecrets:\n  s:\n    file: .\n", service="secrets.s"),
    c(
        "secrets_file",
        "    secrets: [s]\nsecrets:\n  s:\n    file: ${X:-./moorage.env}\n",
        service="secrets.s",
        hidden={"X": "./"},
    ),
    c(
        "configs_file",
        "    configs: [c]\nconfigs:\n  c:\n    file: /etc/passwd\n",
        service="configs.c",
    ),
    c("configs_file", "    configs: [c]\nconfigs:\n  c:\n    file: .\n", service="configs.c"),
    c(
        "configs_file",
        "    configs: [c]\nconfigs:\n  c:\n    file: ${X:-./moorage.env}\n",
        service="configs.c",
        hidden={"X": "/etc/passwd"},
    ),
    c("env_file", "    env_file: /etc/os-release\n"),
    c("env_file", "    env_file: ${X:-./moorage.env}\n"),  # interpolated: unknowable before
    c("label_file", "    label_file: /etc/os-release\n"),  # judged before Compose reads it
    c(
        "extends_file",
        "    extends:\n      file: /etc/moorage-none.yml\n      service: base\n",
    ),
    c("include", "include:\n  - /etc/moorage-none.yml\n", service="include"),
    c("credential_spec", "    credential_spec:\n      file: spec.json\n"),
    c("network_mode", "    network_mode: host\n"),
    c("network_mode", "    network_mode: ${X:-none}\n", hidden={"X": "host"}),
    c("pid", "    pid: host\n"),
    c("pid", "    pid: ${X:-service:db}\n  db:\n    image: " + IMAGE + "\n", hidden={"X": "host"}),
    c("ipc", "    ipc: host\n"),
    c("ipc", "    ipc: ${X:-private}\n", hidden={"X": "host"}),
    c("uts", "    uts: host\n", v2_only=True),
    c("userns_mode", "    userns_mode: host\n"),
    c("userns_mode", "    userns_mode: ${X:-}\n", hidden={"X": "host"}),
    c("cgroup", "    cgroup: host\n", v2_only=True),
    c("cgroup_parent", "    cgroup_parent: /system.slice\n"),
    c("cgroup_parent", "    cgroup_parent: ${X:-}\n", hidden={"X": "/system.slice"}),
    c("privileged", "    privileged: true\n"),
    c("privileged", "    privileged: ${X:-false}\n", hidden={"X": "true"}),
    c("cap_add", "    cap_add: [SYS_ADMIN]\n"),
    c("cap_add", "    cap_add: ['${X:-CHOWN}']\n", hidden={"X": "SYS_ADMIN"}),
    c("devices", "    devices: ['/dev/null:/dev/host-null']\n"),
    c("device_cgroup_rules", "    device_cgroup_rules: ['b 8:* rmw']\n"),
    c(
        "gpus",
        "    deploy:\n      resources:\n        reservations:\n          devices:\n"
        "            - capabilities: [gpu]\n",
    ),
    c("security_opt", "    security_opt: ['apparmor:unconfined']\n"),
    c(
        "security_opt",
        "    security_opt: ['${X:-no-new-privileges:true}']\n",
        hidden={"X": "seccomp:unconfined"},
    ),
    c("sysctls", "    sysctls: {kernel.msgmax: 65536}\n"),
    c(
        "sysctls",
        "    sysctls: ['${X:-net.ipv4.tcp_syncookies}=1']\n",
        hidden={"X": "net.ipv4.ip_forward"},
    ),
    c("oom_kill_disable", "    oom_kill_disable: true\n"),
    c("oom_kill_disable", "    oom_kill_disable: ${X:-false}\n", hidden={"X": "true"}),
    c("priority", "    ulimits:\n      rtprio: 99\n"),
    c("priority", "    ulimits:\n      nice: ${X:-0}\n", hidden={"X": "40"}),
    c("oom_score_adj", "    oom_score_adj: -900\n"),
    c("oom_score_adj", "    oom_score_adj: ${X:-0}\n", hidden={"X": "-900"}),
    c("runtime", "    runtime: runc\n"),
    c("isolation", "    isolation: process\n"),
    c("storage_opt", "    storage_opt: {size: 1G}\n"),
    c("annotations", "    annotations: {run.oci.keep_original_groups: '1'}\n", v2_only=True),
    c("logging", "    logging:\n      driver: syslog\n"),
    c("logging", "    logging:\n      driver: ${X:-json-file}\n", hidden={"X": "journald"}),
    c("provider", "    use_api_socket: true\n", v2_only=True),
    c("ports", "    ports: ['0.0.0.0:18999:8080']\n"),
    c("ports", "    ports: ['18999:8080']\n"),
    c("ports", "    ports: ['${X:-127.0.0.1}:18999:8080']\n", hidden={"X": "0.0.0.0"}),
    c(
        "external_network",
        "    networks: [n]\nnetworks:\n  n:\n    external: true\n    name: bridge\n",
        service="networks.n",
    ),
    c(
        "external_network",
        "    networks: [n]\nnetworks:\n  n:\n    name: ${X:-}\n",
        service="networks.n",
        hidden={"X": "moorage_other_production"},
    ),
    c("moorage_label", '    labels:\n      moorage.pin.0: \'{"source": "/", "base": "/"}\'\n'),
    c("moorage_label", "    labels:\n      - '${X:-app}=1'\n", hidden={"X": "moorage.drill"}),
    c(
        "moorage_label",
        "    volumes:\n      - data:/data\nvolumes:\n  data:\n    labels:\n"
        "      moorage.workload: w\n",
        service="volumes.data",
    ),
    c(
        "network_driver",
        "    networks: [n]\nnetworks:\n  n:\n    driver: macvlan\n",
        service="networks.n",
    ),
    c(
        "network_driver",
        "    networks: [n]\nnetworks:\n  n:\n    driver: ${X:-bridge}\n",
        service="networks.n",
        hidden={"X": "macvlan"},
    ),
]


def case_id(case: Case) -> str:
    return f"{case.power}{'-hidden' if case.hidden else ''}{'-v2' if case.v2_only else ''}"


def test_the_corpus_covers_every_row() -> None:
    assert {case.power for case in CASES} | {"unreviewed"} == {r.name for r in RULES}


def docker_ids(*filters: str) -> list[str]:
    args = [f"--filter={f}" for f in filters]
    out = subprocess.run(
        ["docker", "ps", "-aq", *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return out.split()


def listed(server: Server, project: str) -> list[str]:
    r = server.viewer.get("/api/workloads", params={"project": project})
    assert r.status_code == 200, r.text
    return [w["id"] for w in r.json()["items"]]


def audit_of(server: Server, workload_id: str) -> list[dict[str, Any]]:
    r = server.admin.get("/api/audit", params={"target_type": "workload", "target_id": workload_id})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def body(project: str, text: str, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or unique("hp"),
        "kind": "compose",
        "project": project,
        "stage": STAGE,
        "config": {"compose": text},
    }


def assert_names(error: dict[str, Any], case: Case) -> None:
    assert error["code"] == "needs_admin"
    assert any(
        d["power"] == case.power and d["service"] == case.service for d in error["details"]
    ), error
    assert case.power in error["message"] and case.service in error["message"], error


@pytest.mark.parametrize("case", [k for k in CASES if k.hidden is None], ids=case_id)
def test_a_hostile_file_needs_an_admin(server: Server, project: str, case: Case) -> None:
    wanted = body(project, case.text())
    r = server.operator.post("/api/workloads", json=wanted)
    if case.v2_only and not COMPOSE_V2:
        assert_error(r, 422, "invalid_config")
        assert_error(server.admin.post("/api/workloads", json=wanted), 422, "invalid_config")
        assert listed(server, project) == []
        return
    assert_names(assert_error(r, 403, "needs_admin"), case)
    assert listed(server, project) == []
    compose_project = project_name(project, STAGE, wanted["name"])
    assert docker_ids(f"label=com.docker.compose.project={compose_project}") == []

    r = server.admin.post("/api/workloads", json=wanted)
    assert r.status_code == 201, r.text
    created = r.json()
    assert listed(server, project) == [created["id"]]
    [row] = [a for a in audit_of(server, created["id"]) if a["action"] == "workload.create"]
    assert row["actor"] == "admin"
    assert any(case.power in p for p in row["details"]["host_powers_granted"]), row
    # And an operator cannot bring the same file in through a PATCH of a harmless one.
    harmless = server.operator.post(
        "/api/workloads", json=body(project, f"services:\n  web:\n    image: {IMAGE}\n")
    )
    assert harmless.status_code == 201, harmless.text
    before = harmless.json()
    r = server.operator.patch(
        f"/api/workloads/{before['id']}", json={"config": {"compose": case.text()}}
    )
    assert_names(assert_error(r, 403, "needs_admin"), case)
    shown = server.viewer.get(f"/api/workloads/{before['id']}").json()
    assert shown["config"] == before["config"]


@pytest.mark.parametrize("case", [k for k in CASES if k.hidden is not None], ids=case_id)
def test_a_power_hidden_behind_interpolation_needs_an_admin(
    server: Server, project: str, case: Case
) -> None:
    assert case.hidden is not None
    r = server.operator.post("/api/workloads", json=body(project, case.text()))
    assert r.status_code == 201, r.text  # harmless with the defaults
    workload = r.json()
    env_url = f"/api/workloads/{workload['id']}/env"
    hostile = {k: {"value": v, "secret": False} for k, v in case.hidden.items()}
    before_audit = audit_of(server, workload["id"])

    assert_names(assert_error(server.operator.put(env_url, json=hostile), 403, "needs_admin"), case)
    assert server.operator.get(env_url).json() == {}
    assert audit_of(server, workload["id"]) == before_audit
    assert docker_ids(f"label=moorage.workload={workload['id']}") == []
    # The file as saved is still harmless: the operator's create above passed the same
    # review a deploy makes (``services/deploys``: the saved file with the saved env). Not
    # deployed here: twenty compose projects up and down cost the suite minutes.

    r = server.admin.put(env_url, json=hostile)
    assert r.status_code == 200, r.text
    [row] = [a for a in audit_of(server, workload["id"]) if a["action"] == "workload.env.replace"]
    assert row["actor"] == "admin"
    assert any(case.power in p for p in row["details"]["host_powers_granted"]), row


# Image configs: the container spec Moorage builds has no way to ask for any of these, so the
# config model has no field for them (422 for everyone, nothing created).
HOSTILE_IMAGE_CONFIGS = {
    "privileged": {"privileged": True},
    "cap_add": {"cap_add": ["SYS_ADMIN"]},
    "devices": {"devices": ["/dev/sda"]},
    "network_mode": {"network_mode": "host"},
    "bind_mount": {"volumes": ["/:/host"]},
    "ports": {"ports": [{"container": 8080, "host": 18080, "host_ip": "0.0.0.0"}]},
    "security_opt": {"security_opt": ["seccomp=unconfined"]},
    "pid": {"pid": "host"},
}


@pytest.mark.parametrize("extra", HOSTILE_IMAGE_CONFIGS.values(), ids=HOSTILE_IMAGE_CONFIGS.keys())
def test_an_image_config_cannot_ask_for_host_powers(
    server: Server, project: str, extra: dict[str, Any]
) -> None:
    wanted = {
        "name": unique("img"),
        "kind": "image",
        "project": project,
        "stage": STAGE,
        "config": {"image": IMAGE, **extra},
    }
    for api in (server.operator, server.admin):
        assert_error(api.post("/api/workloads", json=wanted), 422, "invalid_config")
    assert listed(server, project) == []


@pytest.mark.parametrize(
    "body_text",
    [
        "    env_file: /etc/shadow\n",
        "    extends:\n      file: /etc/shadow\n      service: root\n",
        "    label_file: /etc/shadow\n",
    ],
    ids=["env_file", "extends", "label_file"],
)
def test_an_operator_never_learns_what_a_host_file_holds(
    server: Server, project: str, body_text: str
) -> None:
    # The read itself is the power: refused before Compose opens the file, so no error
    # quoting it can come back.
    text = f"services:\n  web:\n    image: {IMAGE}\n{body_text}"
    r = server.operator.post("/api/workloads", json=body(project, text))
    assert_error(r, 403, "needs_admin")
    assert "root:" not in r.text
    assert listed(server, project) == []


# --- Compose's own process -------------------------------------------------------------------


def runtime_envs(marker: Path) -> dict[str, dict[str, str]]:
    """Env that, if Compose's own process (Python for v1, the C library under both) took
    it, would run a command as root that creates ``marker``."""
    hook = marker.parent / "site"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('root')\n")
    return {
        "pythonwarnings-browser": {
            "PYTHONWARNINGS": "all:0:antigravity.x:0:0",
            "BROWSER": f"/bin/sh -c 'touch {marker}' #%s",
        },
        "pythonpath": {"PYTHONPATH": str(hook)},
        "pythonstartup-inspect": {"PYTHONINSPECT": "1", "PYTHONSTARTUP": str(hook / "x.py")},
    }


@pytest.mark.parametrize(
    "vector", ["pythonwarnings-browser", "pythonpath", "pythonstartup-inspect"]
)
def test_the_workload_env_never_runs_code_in_composes_process(
    server: Server, project: str, tmp_path: Path, vector: str
) -> None:
    """The helper's reproduction: an operator's env reached ``docker-compose`` (run as
    root) as its process environment, and ``PYTHONWARNINGS`` + ``BROWSER`` ran a shell.
    Compose now gets only the variables its file names, never one its program reads;
    the containers still get every variable."""
    from tests.integration.helpers import deploy

    marker = tmp_path / "ran-as-root"
    env = runtime_envs(marker)[vector]
    text = f"services:\n  web:\n    image: {IMAGE}\n    environment:\n      - A=${{APP}}\n"
    r = server.operator.post("/api/workloads", json=body(project, text))
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    values = {k: {"value": v, "secret": False} for k, v in {**env, "APP": "1"}.items()}
    r = server.operator.put(f"/api/workloads/{wid}/env", json=values)
    assert r.status_code == 200, r.text  # the file does not name them: saved, and harmless
    assert deploy(server.operator, wid)["status"] == "succeeded"
    assert not marker.exists()
    [container] = docker_ids(f"label=moorage.workload={wid}")
    seen = subprocess.run(
        ["docker", "exec", container, "env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "A=1" in seen and all(f"{k}={v}" in seen for k, v in env.items()), seen

    # A file that names one of them is refused (it would resolve to nothing), for anyone.
    named = text.replace("${APP}", "${" + next(iter(env)) + "}")
    for api in (server.operator, server.admin):
        r = api.patch(f"/api/workloads/{wid}", json={"config": {"compose": named}})
        error = assert_error(r, 422, "invalid_config")
        assert next(iter(env)) in error["message"] and "rename" in error["message"], error
    assert not marker.exists()
    server.operator.delete(f"/api/workloads/{wid}")


@pytest.mark.parametrize("name", ["DOCKER_HOST", "HOME", "PATH"])
def test_a_file_never_reads_the_servers_environment(
    server: Server, project: str, name: str
) -> None:
    """Compose fills ``${NAME}`` from its own process environment first, and Moorage hands
    it the server's home, path, proxy and daemon address: a container's command echoed
    them into the log an operator reads (attacker pass I). Refused for anyone, nothing
    made; ``$$NAME`` is the container's own and is kept."""
    text = f"services:\n  web:\n    image: {IMAGE}\n    command: echo ${{{name}:-x}}\n"
    for api in (server.operator, server.admin):
        r = api.post("/api/workloads", json=body(project, text))
        error = assert_error(r, 422, "invalid_config")
        assert f"${{{name}}}" in error["message"] and f"$${name}" in error["message"], error
    assert listed(server, project) == []
    r = server.operator.post("/api/workloads", json=body(project, text.replace("${", "$${")))
    assert r.status_code == 201, r.text
    server.operator.delete(f"/api/workloads/{r.json()['id']}")


def test_what_runs_under_a_grant_is_the_admins_to_change(
    server: Server, project: str, tmp_path: Path
) -> None:
    """The helpers' reproductions: an admin granted a bind to a file whose image and
    command are ``${IMG}`` and ``${CMD}``; an operator's env change swapped both and ran
    a shell over the granted host path. Then an operator's volume mounted over ``/bin``
    replaced the program. Env (any variable: ``LD_PRELOAD``, ``PATH``), volumes and hooks
    of a workload holding powers are the admin's to change."""
    host = tmp_path / "granted"
    host.mkdir()
    text = (
        "services:\n  web:\n    image: ${IMG:-" + IMAGE + "}\n"
        "    command: ${CMD:-httpd -f -p 8080 -h /www}\n"
        f"    volumes:\n      - {host}:/data\n"
    )
    r = server.admin.post("/api/workloads", json=body(project, text))
    assert r.status_code == 201, r.text
    url = f"/api/workloads/{r.json()['id']}"

    def env(**values: str) -> dict[str, Any]:
        return {k: {"value": v, "secret": False} for k, v in values.items()}

    hostile_envs = [env(IMG="moorage-test/healthy:1"), env(CMD="sh -c id"), env(CMD="")]
    hostile_envs += [env(LD_PRELOAD="/data/x.so"), env(PATH="/data:/bin"), env(APP_MODE="x")]
    for hostile in hostile_envs:
        error = assert_error(server.operator.put(f"{url}/env", json=hostile), 403, "needs_admin")
        assert "bind_mount" in error["message"], error
        assert next(iter(hostile)) not in server.admin.get(f"{url}/env").text  # unsaved
    tools = [{"name": "t", "scope": "stage", "source": "tools", "target": "/bin", "service": "web"}]
    r = server.operator.put(f"{url}/volumes", json=tools)
    assert_error(r, 403, "needs_admin")
    assert server.admin.get(f"{url}/volumes").json()["items"] == []
    hooks = {"before": {"command": ["sh", "-c", "id > /data/x"]}}
    assert_error(server.operator.put(f"{url}/snapshot-hooks", json=hooks), 403, "needs_admin")
    # The admin may; and deploying it as it is stays an operator's.
    r = server.admin.put(f"{url}/env", json=env(APP_MODE="x", IMG=IMAGE))
    assert r.status_code == 200, r.text
    r = server.operator.put(f"{url}/env", json=env(APP_MODE="x", IMG=IMAGE))  # no change
    assert r.status_code == 200, r.text
    server.admin.delete(url)


def test_a_bind_below_the_workloads_own_volume_needs_an_admin(server: Server, project: str) -> None:
    """A helper's note: the table lets a bind below one of the workload's Moorage volumes
    pass (``scope.mounts``), and Docker follows a link in a bind's source (the
    workload's own container can make ``sub -> /`` in its volume). What keeps it an
    admin's is that the check a change passes leaves the volumes out
    (``powers.view_of``): this holds that in place."""
    text = f"services:\n  web:\n    image: {IMAGE}\n"
    wid = server.operator.post("/api/workloads", json=body(project, text)).json()["id"]
    url = f"/api/workloads/{wid}"
    volume = {
        "name": "v",
        "scope": "stage",
        "source": unique("v"),
        "target": "/data",
        "service": "web",
    }
    r = server.operator.put(f"{url}/volumes", json=[volume])
    assert r.status_code == 200, r.text
    below = r.json()["items"][0]["host_path"]
    for source in (f"{below}/sub", below):
        bound = text + f"    volumes:\n      - {source}:/host\n"
        r = server.operator.patch(url, json={"config": {"compose": bound}})
        error = assert_error(r, 403, "needs_admin")
        assert "bind_mount" in error["message"], error
    server.admin.delete(url)
