"""Image polling against a private registry: a new digest under the same tag is deployed.

The registry is Debian's docker-registry on a loopback port (tests/integration/registry.py).
moorage-test/httpd:1 goes up as ``<host>/team/poll:live`` and is deployed; then
moorage-test/httpd:2 is pushed under the same tag, and the image-poll trigger bound to the
workload has to notice the new digest and deploy it, with a pull.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Server, create_workload, free_port, unique
from tests.integration.helpers import deploy, get_text, wait_deployment, wait_until
from tests.integration.registry import (
    RegistryServer,
    image_present,
    registry_server_fixture,  # noqa: F401 (the registry_server fixture)
    untag,
)

INTERVAL = 5  # the smallest interval an image-poll trigger accepts


@pytest.fixture
def live_ref(registry_server: RegistryServer) -> Iterator[str]:
    """The tag both versions are pushed under; never left tagged locally."""
    ref = f"{registry_server.host}/team/poll:live"
    untag(ref)
    yield ref
    untag(ref)


@pytest.fixture
def cleanup(server: Server) -> Iterator[list[str]]:
    """API paths to DELETE after the test: triggers first, so nothing fires mid-teardown."""
    paths: list[str] = []
    yield paths
    for path in paths:
        server.admin.delete(path)


def trigger_deployments(server: Server, workload_id: str, trigger_id: str) -> list[dict[str, Any]]:
    r = server.viewer.get(f"/api/workloads/{workload_id}/deployments")
    assert r.status_code == 200, r.text
    return [d for d in r.json()["items"] if d["reason"] == f"trigger:{trigger_id}"]


def test_a_new_digest_under_the_same_tag_is_pulled_and_deployed(
    server: Server,
    project: str,
    registry_server: RegistryServer,
    live_ref: str,
    cleanup: list[str],
) -> None:
    repository = live_ref.rpartition(":")[0]
    v1 = registry_server.push("moorage-test/httpd:1", live_ref)
    assert not image_present(live_ref)

    port = free_port()
    config = {
        "image": live_ref,
        "registry_auth": registry_server.auth(),
        "ports": [{"container": 8080, "host": port}],
        "health": {"http": "/", "port": 8080, "grace_seconds": 0.5},
    }
    workload = create_workload(server, project, config=config)
    workload_id = workload["id"]
    first = deploy(server.operator, workload_id)
    assert first["status"] == "succeeded", first["log"]
    assert first["artifact"]["digest"] == f"{repository}@{v1}"
    assert get_text(port) == "hello from v1\n"

    r = server.operator.post(
        "/api/triggers",
        json={
            "kind": "image-poll",
            "name": unique("poll"),
            "config": {"interval_seconds": INTERVAL},
        },
    )
    assert r.status_code == 201, r.text
    trigger_id = r.json()["id"]
    cleanup += [f"/api/triggers/{trigger_id}", f"/api/workloads/{workload_id}"]
    r = server.operator.post(
        f"/api/workloads/{workload_id}/triggers", json={"trigger_id": trigger_id}
    )
    assert r.status_code == 201, r.text

    # The poll may deploy the moment the push lands; untagging ``live_ref`` then would pull
    # the image from under that deploy, so the tag stays (the fixture drops it at the end).
    v2 = registry_server.push("moorage-test/httpd:2", live_ref, keep_local_tag=True)
    assert v2 != v1

    wait_until(
        lambda: trigger_deployments(server, workload_id, trigger_id),
        60,
        "the image-poll trigger to queue a deploy of the new digest",
    )
    (polled,) = trigger_deployments(server, workload_id, trigger_id)
    assert polled["pull"] is True
    done = wait_deployment(server.viewer, workload_id, polled["id"])
    assert done["status"] == "succeeded", done["log"]
    assert f"pulling {live_ref}" in done["log"]
    assert done["artifact"]["digest"] == f"{repository}@{v2}"
    assert get_text(port) == "hello from v2\n"

    # The digest no longer moves: two more intervals pass without another deploy.
    time.sleep(2 * INTERVAL + 1)
    assert [d["id"] for d in trigger_deployments(server, workload_id, trigger_id)] == [polled["id"]]
    assert get_text(port) == "hello from v2\n"
