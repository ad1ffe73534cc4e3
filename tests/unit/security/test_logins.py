"""The login backoff's arithmetic on a fake clock, and address keys."""

from __future__ import annotations

import pytest

from moorage.errors import TooManyRequests
from moorage.security.logins import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    FIRST_DELAY_SECONDS,
    MAX_DELAY_SECONDS,
    Backoff,
    LoginGuard,
    address_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_failures_then_doubling_waits_up_to_the_cap() -> None:
    clock = Clock()
    backoff = Backoff(free=3, first=2, longest=60, forget=3600, clock=clock)
    for _ in range(3):
        assert backoff.wait("k") == 0
        backoff.fail("k")
    waits = []
    for _ in range(8):
        waits.append(backoff.wait("k"))
        clock.now += waits[-1]
        assert backoff.wait("k") == 0
        backoff.fail("k")
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_a_quiet_key_starts_over_and_the_oldest_key_goes_first() -> None:
    clock = Clock()
    backoff = Backoff(free=1, first=2, longest=60, forget=100, max_keys=2, clock=clock)
    backoff.fail("a")
    assert backoff.wait("a") == 2
    clock.now += 101
    assert backoff.wait("a") == 0
    backoff.fail("a")
    backoff.fail("b")
    backoff.fail("c")  # over max_keys: "a", the longest quiet, is dropped
    assert backoff.wait("a") == 0
    assert backoff.wait("b") == backoff.wait("c") == 2


def test_parallel_attempts_count_before_they_are_checked() -> None:
    clock = Clock()
    guard = LoginGuard(clock=clock)
    for _ in range(ACCOUNT_FREE_FAILURES):
        guard.admit("kate", "192.0.2.1")  # all let in before any has failed
    with pytest.raises(TooManyRequests) as refused:
        guard.admit("kate", "192.0.2.2")
    assert refused.value.code == "login_backoff"
    assert refused.value.retry_after == FIRST_DELAY_SECONDS
    clock.now += FIRST_DELAY_SECONDS
    guard.admit("kate", "192.0.2.2")
    guard.succeeded("kate", "192.0.2.2")
    guard.admit("kate", "192.0.2.2")  # the account started over


def test_an_address_backs_off_across_accounts() -> None:
    guard = LoginGuard(clock=Clock())
    for i in range(ADDRESS_FREE_FAILURES):
        guard.admit(f"user-{i}", "2001:db8::1")
    with pytest.raises(TooManyRequests):
        guard.admit("someone-else", "2001:db8::ffff")  # the same /64
    guard.admit("someone-else", "2001:db8:0:1::1")


def test_the_longest_wait_is_bounded() -> None:
    clock = Clock()
    backoff = Backoff(free=0, clock=clock)
    for _ in range(100):
        backoff.fail("k")
    assert backoff.wait("k") == MAX_DELAY_SECONDS


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8::7", "2001:db8::/64"),
        ("testclient", "testclient"),
        ("", ""),
    ],
)
def test_address_keys(address: str, key: str) -> None:
    assert address_key(address) == key


def test_attempts_the_gate_turned_away_use_up_no_free_failure() -> None:
    """Under a flood of others' logins the password gate answers 503 ``busy`` without
    checking the password; those attempts are withdrawn, so the person behind them is
    never backed off for 503s they did not cause."""
    guard = LoginGuard(clock=Clock())
    for _ in range(ACCOUNT_FREE_FAILURES * 3):
        guard.admit("admin", "192.0.2.9")
        guard.withdrawn("admin", "192.0.2.9")
    guard.admit("admin", "192.0.2.9")  # still admitted: no failure was kept
    guard.succeeded("admin", "192.0.2.9")
