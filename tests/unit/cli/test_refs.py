"""The snapshot reference ``latest`` (``cli/refs.resolve_snapshot``): the newest ready
snapshot a person or a schedule took or imported (``states.LATEST_ORIGINS``), never the
pre-restore snapshot a restore left nor a deploy's checkpoint, read through the real
client over an httpx transport that answers the list endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from moorage.cli.client import Client, CliError
from moorage.cli.refs import resolve_snapshot

WORKLOAD = {"id": "wl_1", "name": "stack"}


def client_listing(items: list[dict[str, Any]]) -> Client:
    """A client whose server lists ``items`` (newest first) as the workload's snapshots."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/workloads/wl_1/snapshots"
        return httpx.Response(200, json={"items": items})

    client = Client("http://moorage.test", token="t")
    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(answer))
    return client


def snap(sid: str, origin: str, status: str = "ready") -> dict[str, Any]:
    return {"id": sid, "origin": origin, "status": status}


def test_latest_passes_over_pre_restore_and_checkpoint_snapshots() -> None:
    items = [
        snap("sn_pre", "pre-restore"),
        snap("sn_cp", "checkpoint"),
        snap("sn_capturing", "manual", status="capturing"),
        snap("sn_manual", "manual"),
        snap("sn_older", "scheduled"),
    ]
    assert resolve_snapshot(client_listing(items), WORKLOAD, "latest") == "sn_manual"


@pytest.mark.parametrize("origin", ["manual", "scheduled", "import", "recovery-point"])
def test_latest_is_what_a_person_or_a_schedule_took_or_imported(origin: str) -> None:
    items = [snap("sn_pre", "pre-restore"), snap("sn_it", origin), snap("sn_old", "manual")]
    assert resolve_snapshot(client_listing(items), WORKLOAD, "latest") == "sn_it"


def test_only_automatic_snapshots_is_an_error_that_says_why() -> None:
    items = [snap("sn_pre", "pre-restore"), snap("sn_cp", "checkpoint")]
    with pytest.raises(CliError) as refused:
        resolve_snapshot(client_listing(items), WORKLOAD, "latest")
    assert "stack" in refused.value.message and "pre-restore" in refused.value.message
