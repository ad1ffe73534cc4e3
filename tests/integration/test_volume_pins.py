"""A container mounts the directory Moorage checked, never what a swapped path points at.

Through a real server and the real engine. A component of a volume's path is flipped
between a directory and a symlink to a directory outside (``renameat2`` exchange, as
fast as it goes) while the workload deploys again and again: every deploy must
either refuse or mount the real directory, and the outside one must never appear
in a container. A pinned mount also survives a restart by Docker itself after the
path has been swapped for a link.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from moorage.snapshots.restore.swap import exchange, supports_exchange
from tests.conftest import Server, create_workload, free_port, unique
from tests.integration.helpers import deploy

DEPLOYS = 6


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def _seen(container: str) -> list[str]:
    return sorted(_docker("exec", container, "ls", "/data").split())


def _container(server: Server, workload: dict[str, Any]) -> str:
    out = _docker(
        "ps", "--format", "{{.Names}}", "--filter", f"label=moorage.workload={workload['id']}"
    )
    names = out.split()
    assert len(names) == 1, names
    return names[0]


@pytest.fixture
def flippable(server: Server, project: str, tmp_path: Path) -> dict[str, Any]:
    """A workload whose volume is ``<stage>/<u>/data``, a link ready to swap in for
    ``<stage>/<u>``, and an outside directory the link points at."""
    u = unique("flip")
    base = server.data_dir / "volumes" / project / "production"
    real = base / u
    (real / "data").mkdir(parents=True)
    (real / "data" / "canary-inside").write_text("inside")
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "canary-outside").write_text("host data")
    link = base / f"{u}-link"
    link.symlink_to(outside)
    if not supports_exchange(base):
        pytest.skip("the filesystem has no RENAME_EXCHANGE")
    workload = create_workload(
        server,
        project,
        config={
            "image": "moorage-test/httpd:1",
            "ports": [{"container": 8080, "host": free_port()}],
        },
    )
    r = server.operator.put(
        f"/api/workloads/{workload['id']}/volumes",
        json=[{"name": "data", "scope": "stage", "source": f"{u}/data", "target": "/data"}],
    )
    assert r.status_code == 200, r.text
    return {"workload": workload, "real": real, "link": link, "outside": outside}


def test_the_container_binds_a_pin_of_the_checked_directory(
    server: Server, flippable: dict[str, Any]
) -> None:
    workload = flippable["workload"]
    assert deploy(server.operator, workload["id"])["status"] == "succeeded"
    container = _container(server, workload)
    mounts = json.loads(_docker("inspect", "--format", "{{json .Mounts}}", container))
    assert [m["Destination"] for m in mounts] == ["/data"]
    assert "/pins/" in mounts[0]["Source"], mounts
    assert _seen(container) == ["canary-inside"]

    # Swap the path for the link, then let Docker restart the container on its own:
    # the pin still shows the directory that was checked.
    exchange(flippable["real"], flippable["link"])
    try:
        _docker("restart", "-t", "1", container)
        assert _seen(container) == ["canary-inside"]
    finally:
        exchange(flippable["real"], flippable["link"])
    server.operator.delete(f"/api/workloads/{workload['id']}")


def test_a_path_flipped_during_deploys_never_mounts_the_link_target(
    server: Server, flippable: dict[str, Any]
) -> None:
    workload = flippable["workload"]
    stop = threading.Event()
    flips = 0

    def flipper() -> None:
        nonlocal flips
        while not stop.is_set():
            exchange(flippable["real"], flippable["link"])
            flips += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    outcomes = []
    try:
        for _ in range(DEPLOYS):
            done = deploy(server.operator, workload["id"])
            if done["status"] == "succeeded":
                stop.set()
                thread.join()
                seen = _seen(_container(server, workload))
                outcomes.append(("succeeded", seen))
                stop.clear()
                thread = threading.Thread(target=flipper, daemon=True)
                thread.start()
            else:
                outcomes.append(("failed", done["error"]))
    finally:
        stop.set()
        thread.join()
    if flips % 2:
        exchange(flippable["real"], flippable["link"])  # leave the directory in place

    assert flips > 100, flips
    for status, what in outcomes:
        if status == "succeeded":
            assert what == ["canary-inside"], outcomes
        else:
            assert "outside" in what or "changed while it was checked" in what, outcomes
    assert sorted(p.name for p in (flippable["outside"] / "data").iterdir()) == ["canary-outside"]
    server.operator.delete(f"/api/workloads/{workload['id']}")


@pytest.mark.parametrize(
    "label",
    [
        'moorage.pin.7={"source": "/etc/ssh", "base": "/etc"}',
        "moorage.pin.x={}",
        "moorage.pin.0=not json",
        "moorage.pin.\u00b2=[1]",
        'moorage.pin.0={"source": null, "base": "/"}',
    ],
)
def test_a_pin_label_on_a_container_binding_no_pin_is_ignored(label: str, tmp_path: Path) -> None:
    """The helper's reproduction: an image's ``LABEL moorage.pin.7=...`` comes along into
    its container's labels (as a Compose file's did), and Moorage's start bind-mounted
    the host path it named. Only a pin the container binds is pinned again; any other
    label, well-formed or not, is ignored and the container starts."""
    from moorage.runtime.docker import DockerEngine
    from moorage.runtime.pins import Pins
    from tests.conftest import RUN_ID, TEST_LABEL

    name = unique("badpin")
    _docker(
        "create",
        "--name",
        name,
        "--label",
        f"{TEST_LABEL}={RUN_ID}",
        "--label",
        label,
        "moorage-test/httpd:1",
    )
    try:
        pins = Pins(tmp_path / "run", "badpin")
        DockerEngine(pins=pins).start(name)
        assert _docker("inspect", "--format", "{{.State.Running}}", name).strip() == "true"
        assert name not in pins.containers()
        assert not (pins.root / name).exists()
    finally:
        _docker("rm", "-f", name)
