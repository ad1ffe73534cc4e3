"""A Caddy that cannot start (here a binary that exits at once) is tried again ever less
often, up to a minute apart, and the reason is kept for ``GET /api/proxy``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from moorage.proxy.router import MAX_RESTART_SECONDS, RESTART_SECONDS, Router
from moorage.settings import Settings


def test_a_caddy_that_will_not_start_is_retried_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, proxy="caddy", proxy_admin_addr="127.0.0.1:9")
    router = Router(settings, cast(Any, None), cast(Any, None), binary="/bin/false", dns_kinds={})
    now = [1000.0]
    monkeypatch.setattr("moorage.proxy.router.time.monotonic", lambda: now[0])
    attempts = []
    start = router.caddy.start

    def counted(bootstrap: dict[str, Any]) -> None:
        attempts.append(now[0])
        start(bootstrap)

    monkeypatch.setattr(router.caddy, "start", counted)
    gaps = []
    for _ in range(12):
        router._ensure_running()
        router._ensure_running()  # at once again: no second attempt
        gaps.append(router._next_start - now[0])
        now[0] = router._next_start
    assert len(attempts) == 12
    assert gaps[0] == RESTART_SECONDS
    assert gaps[1] == 2 * RESTART_SECONDS
    assert max(gaps) == MAX_RESTART_SECONDS
    assert router.status.starts == 0
    assert router.status.last_error and "caddy exited at start" in router.status.last_error
