"""Docker objects on the real engine are found by their exact name: the stage network
(Docker's name filter matches substrings), made once even when ten deploys of one fresh
stage race; and an image (Docker answers an image reference it has no tag for with any
image whose id starts with it)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moorage.runtime.docker import DockerEngine
from moorage.sources.stage import network_name
from tests.conftest import (
    RUN_ID,
    TEST_LABEL,
    Api,
    Server,
    admin_api,
    create_workload,
    free_port,
    start_server,
    stop_server,
    unique,
)
from tests.integration.helpers import containers, deploy, get_text, image_id, wait_deployment

STAGE = "production"
QUICK = {"image": "moorage-test/httpd:1", "health": {"grace_seconds": 0.5}}
FAN_OUT = 10


def networks_named(name: str) -> list[str]:
    """Ids of the networks whose name is exactly ``name``, as Docker lists them."""
    out = subprocess.run(
        ["docker", "network", "ls", "--no-trunc", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sorted(row["ID"] for row in rows if row["Name"] == name)


def attached(network_id: str) -> set[str]:
    """Names of the containers on a network."""
    out = subprocess.run(
        ["docker", "network", "inspect", network_id], capture_output=True, text=True, check=True
    ).stdout
    return {c["Name"] for c in (json.loads(out)[0].get("Containers") or {}).values()}


def create_duplicate(name: str) -> str:
    """A network named ``name`` even when one exists: the Docker API (not the CLI, which
    asks for a duplicate check) makes one, as Moorage's engine did before issue 13."""
    transport = httpx.HTTPTransport(uds="/var/run/docker.sock")
    with httpx.Client(transport=transport, base_url="http://docker") as client:
        r = client.post(
            "/networks/create",
            json={"Name": name, "CheckDuplicate": False, "Labels": {TEST_LABEL: RUN_ID}},
        )
    assert r.status_code == 201, r.text
    return str(r.json()["Id"])


def test_the_engine_makes_one_network_per_name_however_many_race() -> None:
    # Ten engines, as ten processes would have: no lock of one process serves the others.
    name = f"moorage_{unique('seam')}_production"
    labels = {TEST_LABEL: RUN_ID}
    engines = [DockerEngine() for _ in range(10)]
    barrier = threading.Barrier(len(engines))

    def ensure(engine: DockerEngine) -> None:
        barrier.wait()
        engine.ensure_network(name, labels)

    threads = [threading.Thread(target=ensure, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert len(networks_named(name)) == 1
        # One engine's threads (the server's deploy workers) take turns per name.
        threads = [
            threading.Thread(target=engines[0].ensure_network, args=(f"{name}_x", labels))
            for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(networks_named(f"{name}_x")) == 1
        engines[0].remove_network(f"{name}_x")
    finally:
        engines[0].remove_network(name)
    assert networks_named(name) == []


def test_the_engine_heals_duplicates_and_never_touches_a_longer_name() -> None:
    name = f"moorage_{unique('seam')}_production"
    longer = f"{name}_stack_default"
    engine = DockerEngine()
    subprocess.run(
        ["docker", "network", "create", "--label", f"{TEST_LABEL}={RUN_ID}", longer],
        capture_output=True,
        check=True,
    )
    try:
        first = create_duplicate(name)
        # A container joins it while it is alone (Docker refuses an ambiguous name).
        run = ["docker", "run", "-d", "--label", f"{TEST_LABEL}={RUN_ID}", "--network", name]
        user = subprocess.run(
            [*run, "moorage-test/httpd:1"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # Duplicates as older releases (or another tool) left them: the API allows them.
        ids = [first, *(create_duplicate(name) for _ in range(2))]
        assert networks_named(name) == sorted(ids)
        engine.ensure_network(name, {TEST_LABEL: RUN_ID})
        assert networks_named(name) == [first]
        assert len(networks_named(longer)) == 1
        # In use, it stays; once unused, it goes, and the longer name stays.
        engine.remove_network(name)
        assert networks_named(name) == [first]
        subprocess.run(["docker", "rm", "-f", user], capture_output=True, check=True)
        engine.remove_network(name)
        assert networks_named(name) == []
        assert len(networks_named(longer)) == 1
    finally:
        subprocess.run(["docker", "network", "rm", longer], capture_output=True)
        for network_id in networks_named(name):
            subprocess.run(["docker", "network", "rm", network_id], capture_output=True)


def test_an_image_workload_beside_a_compose_stack_gets_its_own_stage_network(
    server: Server, project: str
) -> None:
    # The stack's own network is moorage_<project>_production_stack_default: a substring
    # match for the stage network's name.
    stack_port, web_port = free_port(), free_port()
    text = (
        "services:\n"
        "  web:\n"
        "    image: moorage-test/httpd:1\n"
        "    init: true\n"
        f'    ports: ["127.0.0.1:{stack_port}:8080"]\n'
    )
    stack = create_workload(server, project, name="stack", kind="compose", config={"compose": text})
    web = create_workload(
        server,
        project,
        config={**QUICK, "ports": [{"container": 8080, "host": web_port}]},
    )
    stage_network = network_name(project, STAGE)
    stack_network = f"{stage_network}_stack_default"
    try:
        assert deploy(server.operator, stack["id"])["status"] == "succeeded"
        assert len(networks_named(stack_network)) == 1
        assert networks_named(stage_network) == []

        done = deploy(server.operator, web["id"])
        assert done["status"] == "succeeded", done["log"]
        assert get_text(web_port) == "hello from v1\n"
        (stage_id,) = networks_named(stage_network)
        assert attached(stage_id) == set(containers(web["id"], all_states=False))

        # Deleting the image workload removes the stage network it alone used, never the
        # stack's, whose name merely contains it.
        (stack_id,) = networks_named(stack_network)
        assert server.admin.delete(f"/api/workloads/{web['id']}").status_code == 204
        assert networks_named(stage_network) == []
        assert networks_named(stack_network) == [stack_id]
        assert get_text(stack_port) == "hello from v1\n"
    finally:
        server.admin.delete(f"/api/workloads/{web['id']}")
        server.admin.delete(f"/api/workloads/{stack['id']}")


@pytest.fixture
def racing_server(tmp_path: Path) -> Iterator[Api]:
    """A server with a deploy worker per workload, so all ten deploys run at once."""
    proc, url, env = start_server(tmp_path / "var", {"MOORAGE_DEPLOY_WORKERS": str(FAN_OUT)})
    try:
        yield admin_api(url, env)
    finally:
        stop_server(proc)


def test_a_webhook_fanned_out_to_ten_workloads_of_a_fresh_stage_makes_one_network(
    racing_server: Api,
) -> None:
    api = racing_server
    project = unique("fan")
    assert api.post("/api/projects", json={"slug": project}).status_code == 201
    r = api.post(
        "/api/triggers",
        json={"kind": "webhook", "name": unique("hook"), "config": {"provider": "generic"}},
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    ids = []
    for i in range(FAN_OUT):
        body = {"name": f"w{i}", "kind": "image", "project": project, "stage": STAGE}
        r = api.post("/api/workloads", json={**body, "config": QUICK})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        r = api.post(f"/api/workloads/{ids[-1]}/triggers", json={"trigger_id": hook["id"]})
        assert r.status_code == 201, r.text
    stage_network = network_name(project, STAGE)
    assert networks_named(stage_network) == []

    r = api.post(
        f"/hooks/{hook['token']}",
        content=json.dumps({"ref": "refs/heads/main"}).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Moorage-Event": "push",
            "X-Moorage-Delivery": str(uuid.uuid4()),
        },
    )
    assert r.status_code == 202, r.text
    queued: dict[str, str] = {}
    for wid in ids:
        items = api.get(f"/api/workloads/{wid}/deployments").json()["items"]
        assert [d["reason"] for d in items] == [f"trigger:{hook['id']}"], items
        queued[wid] = items[0]["id"]
    started = time.monotonic()
    done = {wid: wait_deployment(api, wid, did, timeout=180) for wid, did in queued.items()}
    assert {wid: d["status"] for wid, d in done.items()} == dict.fromkeys(ids, "succeeded"), [
        d["log"] for d in done.values() if d["status"] != "succeeded"
    ]
    assert time.monotonic() - started < 180

    (network_id,) = networks_named(stage_network)
    everyone = {name for wid in ids for name in containers(wid, all_states=False)}
    assert len(everyone) == FAN_OUT
    assert attached(network_id) == everyone
    for wid in ids:
        assert api.delete(f"/api/workloads/{wid}").status_code == 204
    assert networks_named(stage_network) == []


def test_an_image_is_found_by_its_reference_never_by_an_id_prefix(
    server: Server, project: str
) -> None:
    full = image_id("moorage-test/httpd:1")
    prefix = full.removeprefix("sha256:")[:12]
    engine = DockerEngine()
    assert engine.image(prefix) is None
    found = engine.image(full)
    assert found is not None and found.id == full
    assert engine.image("moorage-test/httpd:1") == found

    # A workload naming that prefix is not given the httpd image: the pull of the name
    # it really is fails (no registry here), and nothing runs.
    w = create_workload(server, project, config={**QUICK, "image": prefix})
    done = deploy(server.operator, w["id"])
    assert done["status"] == "failed", done["log"]
    assert done["error"].startswith(f"cannot pull {prefix}"), done["error"]
    assert f"pulling {prefix}" in done["log"]
    assert containers(w["id"]) == []


def test_a_local_image_named_with_its_id_is_found_while_the_id_exists() -> None:
    """What a promote of a built image writes: ``name:tag@<image id>``. The id pins it
    while the image carries that repository (any tag); another id, or a name the image
    does not carry (never had, or its tag moved away), is not found."""
    engine = DockerEngine()
    v1, v2 = image_id("moorage-test/httpd:1"), image_id("moorage-test/httpd:2")
    tag = f"moorage-test/pin-{RUN_ID}:1"
    subprocess.run(["docker", "tag", "moorage-test/httpd:1", tag], check=True)
    try:
        pinned = engine.image(f"{tag}@{v1}")
        assert pinned is not None and pinned.id == v1
        # Another tag of the same repository names it too (the pin is the id).
        same_repo = engine.image(f"moorage-test/pin-{RUN_ID}:9@{v1}")
        assert same_repo is not None and same_repo.id == v1
        assert engine.image(f"{tag}@sha256:{'0' * 64}") is None
        subprocess.run(["docker", "tag", "moorage-test/httpd:2", tag], check=True)  # moved
        assert engine.image(tag) is not None and engine.image(tag).id == v2  # type: ignore[union-attr]
        # v1 now carries only another repository's name: not shown under this one.
        assert engine.image(f"{tag}@{v1}") is None
        # Another repository's name on this id: a config may not show one name, run another.
        assert engine.image(f"postgres:16@{v1}") is None
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
