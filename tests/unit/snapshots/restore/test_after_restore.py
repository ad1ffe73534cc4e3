"""After a restore, what reads "the last successful deployment" behaves as before it:
image polling still queues a pull when the registry moved (promote-from is covered
through a real server in tests/integration/test_restore.py)."""

from __future__ import annotations

import pytest

from moorage.security.roles import SYSTEM
from moorage.services import triggers
from tests.unit.snapshots.restore.conftest import Site

MOVED = "sha256:" + "b" * 64


def test_image_polling_still_queues_a_pull_after_a_restore(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = site.world
    restore_id = site.restore()
    assert world.deployments(site.id)[0].reason == f"restore:{restore_id}"
    monkeypatch.setattr(world.engine, "registry_digest", lambda ref, auth: MOVED)
    with world.db.session() as s:
        poll = triggers.create(
            s, SYSTEM, world.deployer.registry, kind="image-poll", name="poll", config={}
        )
        triggers.bind(s, SYSTEM, site.id, poll.id)
        poll_id = poll.id
    assert world.server.runner.poll(poll_id) == 1
    queued = world.deployments(site.id)[0]
    assert (queued.status, queued.reason, queued.pull) == ("queued", f"trigger:{poll_id}", True)
