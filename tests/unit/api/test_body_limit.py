"""``BodyLimit``'s budget: ``vouch`` is asked once per body, only past ``SMALL_BODY``; a
vouched body counts against the budget, and any other is refused there
(``api/limits.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

from moorage.api.limits import SMALL_BODY, BodyLimit
from tests.loops import run


def _call(limit: BodyLimit, chunks: list[bytes]) -> int:
    """The status ``limit`` answers for a POST whose body arrives as ``chunks``."""
    sent: list[dict[str, Any]] = []
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/x",
        "headers": [],
        "client": ("10.1.1.1", 1),
    }

    async def go() -> None:
        await limit(scope, receive, send)

    run(go())
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_vouch_is_asked_once_per_large_body_and_never_for_a_small_one() -> None:
    asked: list[str] = []

    async def vouch(scope: Any) -> bool:
        asked.append(scope["path"])
        return True

    limit = BodyLimit(_ok, max_bytes=2**20, vouch=vouch)
    assert _call(limit, [b"x" * SMALL_BODY]) == 200
    assert asked == []
    assert _call(limit, [b"x" * SMALL_BODY, b"y" * 10, b"z" * 5000, b"w"]) == 200
    assert asked == ["/x"]
    assert limit.vouched.held == 0  # released after the answer
    assert limit.vouched.by_address == {}


def test_a_vouched_body_meets_the_budget() -> None:
    async def vouch(_scope: Any) -> bool:
        return True

    limit = BodyLimit(_ok, max_bytes=2**20, budget=8 * 2**20, vouch=vouch)
    assert _call(limit, [b"x" * (SMALL_BODY + 1000)]) == 200
    limit.vouched.held = limit.budget
    assert _call(limit, [b"x" * (SMALL_BODY + 1000)]) == 503


def test_a_body_past_the_small_part_from_a_sender_nobody_vouches_for_is_not_read() -> None:
    """Anonymous bodies had a budget of their own, and the event loop parsed each whole
    (up to 1 MiB of JSON) before any route asked who sent it: 16 addresses sending 1 MiB
    bodies of 90,000 keys at 11 a second held a token's listing 1.5 s (attacker pass
    H). No route takes more than ``SMALL_BODY`` from a sender it does not know."""
    read: list[int] = []

    async def vouch(_scope: Any) -> bool:
        return False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        read.append(len((await receive())["body"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limit = BodyLimit(app, max_bytes=2**20, vouch=vouch)
    assert _call(limit, [b"x" * SMALL_BODY]) == 200  # a login: small
    assert _call(limit, [b"x" * SMALL_BODY, b"y" * 1000, b"z" * 100_000]) == 401
    assert read == [SMALL_BODY]
    assert limit.vouched.held == 0 and limit.vouched.by_address == {}


def test_unknown_credentials_share_one_read_and_hold_no_worker_thread_each(
    db: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """A flood of made-up bearer tokens and cookies (``vouch``, and every route's
    ``current_actor``) cost one worker thread and one database read each: 600 held every
    worker thread, and a right login waited 7 s behind them (attacker pass G). Now they
    wait together on one read of which credentials exist; a token the offline CLI added
    meanwhile (no generation bump) is still found at its first use."""
    import pytest

    from moorage.api import cache
    from moorage.cli.offline import CLI_ACTOR
    from moorage.errors import Unauthenticated
    from moorage.services import users
    from moorage.store.db import Database

    with db.session() as session:
        admin = users.create(
            session, CLI_ACTOR, username="ada", role="admin", password="a-long-password-1"
        )
    credentials = cache.CredentialCache(db)
    hops: list[str] = []
    real = cache.run_in_threadpool

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(getattr(fn, "__name__", "?"))
        return await real(fn, *args)

    monkeypatch.setattr(cache, "run_in_threadpool", counted)

    async def flood() -> list[BaseException | None]:
        async def one(i: int) -> BaseException | None:
            try:
                if i % 2:
                    await credentials.token(f"mrg_made_up_{i}")
                else:
                    await credentials.cookie(f"made-up-{i}")
            except BaseException as exc:
                return exc
            return None

        return await asyncio.gather(*(one(i) for i in range(300)))

    answers = run(flood())
    assert all(isinstance(a, Unauthenticated) for a in answers)
    assert len(hops) <= 3, hops  # reads of which exist, shared; none per credential

    offline = Database(db.url)  # the CLI's own process: this one sees no generation bump
    with offline.session() as session:
        token, _ = users.create_token(session, CLI_ACTOR, session.merge(admin), "cli")
    offline.dispose()
    actor = run(credentials.token(token))
    assert actor.username == "ada"
    with pytest.raises(Unauthenticated):
        run(credentials.token(token + "x"))
