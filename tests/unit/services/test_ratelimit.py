"""The per-key token bucket (services/ratelimit.py) on a clock the test moves: a burst
of ``per_minute`` calls, then a refusal that says when the next token comes; keys apart."""

from __future__ import annotations

import pytest

from moorage.services import ratelimit
from moorage.services.ratelimit import RateLimiter


class Clock:
    """``time`` as the limiter reads it, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def test_a_full_bucket_allows_a_burst_then_says_when(clock: Clock) -> None:
    limiter = RateLimiter()
    assert [limiter.allow("hook", 6) for _ in range(6)] == [(True, 0.0)] * 6
    allowed, wait = limiter.allow("hook", 6)
    assert not allowed
    assert wait == pytest.approx(10.0)  # 6 a minute: one token every 10 s


def test_tokens_come_back_with_time(clock: Clock) -> None:
    limiter = RateLimiter()
    for _ in range(6):
        limiter.allow("hook", 6)
    clock.now += 4.0
    allowed, wait = limiter.allow("hook", 6)
    assert not allowed and wait == pytest.approx(6.0)
    clock.now += 6.0
    assert limiter.allow("hook", 6) == (True, 0.0)
    assert limiter.allow("hook", 6)[0] is False


def test_a_long_idle_refills_to_the_limit_only(clock: Clock) -> None:
    limiter = RateLimiter()
    limiter.allow("hook", 3)
    clock.now += 3600.0
    assert [limiter.allow("hook", 3)[0] for _ in range(4)] == [True, True, True, False]


def test_keys_have_buckets_of_their_own(clock: Clock) -> None:
    limiter = RateLimiter()
    assert limiter.allow("a", 1) == (True, 0.0)
    allowed, wait = limiter.allow("a", 1)
    assert not allowed and wait == pytest.approx(60.0)
    assert limiter.allow("b", 1) == (True, 0.0)


def test_a_lower_limit_caps_the_saved_tokens(clock: Clock) -> None:
    limiter = RateLimiter()
    limiter.allow("hook", 100)  # 99 left
    assert [limiter.allow("hook", 2)[0] for _ in range(3)] == [True, True, False]


def test_a_refused_call_takes_no_token(clock: Clock) -> None:
    limiter = RateLimiter()
    limiter.allow("hook", 60)
    for _ in range(59):
        limiter.allow("hook", 60)
    for _ in range(5):
        assert limiter.allow("hook", 60)[0] is False
    clock.now += 1.0  # one token a second: the refusals did not dig a hole
    assert limiter.allow("hook", 60) == (True, 0.0)
