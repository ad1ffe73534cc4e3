"""The login backoff's arithmetic on a fake clock, address keys, the addresses a login
succeeded from, and the password gate's order (those addresses first)."""

from __future__ import annotations

import asyncio

import pytest

from moorage.errors import Busy, TooManyRequests
from moorage.security.logins import (
    ACCOUNT_FREE_FAILURES,
    ADDRESS_FREE_FAILURES,
    FIRST_DELAY_SECONDS,
    MAX_DELAY_SECONDS,
    TRUST_SECONDS,
    Backoff,
    LoginGuard,
    PasswordGate,
    address_key,
)
from tests.loops import run


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
        ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4 through a dual-stack proxy
        ("::ffff:203.0.113.9", "203.0.113.9"),  # not the same key as the one above
        ("64:ff9b::c000:22e", "192.0.2.46"),  # IPv4 through NAT64
        ("64:ff9b::1:c000:22e", "64:ff9b::/64"),  # not the /96: a /64 as any IPv6
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


def test_an_address_a_login_succeeded_from_is_known_for_a_while() -> None:
    clock = Clock()
    guard = LoginGuard(clock=clock)
    assert not guard.known("192.0.2.10")
    guard.admit("ann", "192.0.2.10")
    assert not guard.known("192.0.2.10"), "an attempt is not a success"
    guard.succeeded("ann", "192.0.2.10")
    assert guard.known("192.0.2.10")
    assert guard.known("2001:db8::1") is False
    guard.succeeded("ann", "2001:db8::1")
    assert guard.known("2001:db8::ffff"), "an IPv6 client is its /64"
    clock.now += TRUST_SECONDS + 1
    assert not guard.known("192.0.2.10")


def test_the_gate_lets_a_known_address_in_before_the_strangers_waiting() -> None:
    """Strangers fill the gate's slots and its queue (a login flood from many
    addresses, attacker pass E, M3): one from an address a login succeeded from waits
    for the next free slot only, never behind the strangers' queue nor its bound."""
    order: list[str] = []

    async def main() -> None:
        gate = PasswordGate(2, wait=5, max_waiting=4)
        release = asyncio.Event()

        async def hold(name: str, known: bool = False) -> None:
            try:
                async with gate.slot(known=known):
                    order.append(name)
                    await release.wait()
            except Busy:
                order.append(f"{name}:busy")

        tasks = [asyncio.create_task(hold(f"s{i}")) for i in range(7)]
        await asyncio.sleep(0.01)  # s0, s1 hold the slots; s2..s5 wait; s6 is refused
        assert order == ["s0", "s1", "s6:busy"]
        tasks.append(asyncio.create_task(hold("k", known=True)))
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*tasks)

    run(main())
    assert order[:4] == ["s0", "s1", "s6:busy", "k"], order
    assert sorted(order[4:]) == ["s2", "s3", "s4", "s5"]


def test_a_waiter_that_times_out_or_is_cancelled_gives_no_slot_away() -> None:
    async def main() -> list[str]:
        gate = PasswordGate(1, wait=0.05, max_waiting=8)
        seen: list[str] = []
        held = asyncio.Event()
        done = asyncio.Event()

        async def holder() -> None:
            async with gate.slot():
                held.set()
                await done.wait()

        async def late(name: str, known: bool) -> None:
            try:
                async with gate.slot(known=known):
                    seen.append(name)
            except Busy:
                seen.append(f"{name}:busy")

        first = asyncio.create_task(holder())
        await held.wait()
        await asyncio.gather(late("a", False), late("b", True))  # both time out
        cancelled = asyncio.create_task(late("c", True))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        done.set()
        await first
        async with gate.slot():  # the one slot is free again, exactly once
            seen.append("d")
        await asyncio.gather(late("e", False), late("f", True))
        return seen

    assert run(main()) == ["a:busy", "b:busy", "d", "e", "f"]


def test_a_guesser_holding_an_account_does_not_lock_out_its_returning_owner() -> None:
    """Five wrong passwords from anywhere backed the admin's own correct login off
    (attacker pass F, F4). The account's backoff now binds addresses no login succeeded
    from; the owner's known address meets only its own, and the owner's success does
    not start the guesser over."""
    clock = Clock()
    guard = LoginGuard(clock=clock)
    guard.admit("admin", "192.0.2.20")
    guard.succeeded("admin", "192.0.2.20")  # the owner's address is known
    for _ in range(ACCOUNT_FREE_FAILURES):
        guard.admit("admin", "198.51.100.7")  # a guesser's, failing
    with pytest.raises(TooManyRequests):
        guard.admit("admin", "198.51.100.7")
    with pytest.raises(TooManyRequests):
        guard.admit("admin", "203.0.113.1")  # any other stranger too
    guard.admit("admin", "192.0.2.20")  # the owner is let in
    guard.succeeded("admin", "192.0.2.20")
    with pytest.raises(TooManyRequests):
        guard.admit("admin", "198.51.100.7")  # and the guesser still waits
    for _ in range(ADDRESS_FREE_FAILURES):
        guard.admit("admin", "192.0.2.20")  # a known address guessing meets its own
    with pytest.raises(TooManyRequests):
        guard.admit("admin", "192.0.2.20")


def test_another_accounts_login_does_not_free_an_address_of_the_account_backoff() -> None:
    """A viewer's login made its address known, and from there the admin account's
    backoff no longer bound: a viewer guessed the admin's password 20 times per address
    it logged in from, at the gate's pace (attacker pass H). The address is still served
    first by the gate (``known``), but only the account's own logins exempt it."""
    clock = Clock()
    guard = LoginGuard(clock=clock)
    for _ in range(ACCOUNT_FREE_FAILURES):
        guard.admit("admin", "198.51.100.7")  # the admin account is held by a guesser
    with pytest.raises(TooManyRequests):
        guard.admit("admin", "198.51.100.7")
    guard.admit("viewer", "192.0.2.30")
    guard.succeeded("viewer", "192.0.2.30")  # the guesser's own account
    assert guard.known("192.0.2.30")
    with pytest.raises(TooManyRequests):
        guard.admit("admin", "192.0.2.30")
