"""What keeps password guessing slow and cheap for the server: backoff and a gate.

``LoginGuard`` backs off per account and per client address: a few failures are
free, then each next attempt must wait twice as long as the one before (429 with
``Retry-After``). An attempt counts as a failure from the moment it is let in and
is forgiven only when it succeeds, so a burst of parallel guesses cannot all slip
in before the first one fails. Unknown accounts back off exactly like known ones.

``PasswordGate`` lets a few password checks run at once (``secrets.HASH_SLOTS``);
the rest wait on the event loop, not in a worker thread, for a short while and
then get 503. Both live in memory, per process, bounded in size.

A guesser can hold one account at the longest delay: its owner then waits too,
while API tokens and ``moorage token create`` keep working.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from moorage.errors import Busy, TooManyRequests
from moorage.security.secrets import HASH_SLOTS

ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20
FIRST_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 300.0
FORGET_AFTER_SECONDS = 3600.0
MAX_KEYS = 50_000
GATE_WAIT_SECONDS = 5.0
GATE_MAX_WAITING = 32


@dataclass
class _Failures:
    count: int
    last: float


class Backoff:
    """Failures per key: after ``free`` of them, attempt n waits ``first * 2**(n - free)``
    seconds after the last one (at most ``longest``); a key quiet for ``forget`` seconds
    starts over."""

    def __init__(
        self,
        *,
        free: int,
        first: float = FIRST_DELAY_SECONDS,
        longest: float = MAX_DELAY_SECONDS,
        forget: float = FORGET_AFTER_SECONDS,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.first, self.longest, self.forget = free, first, longest, forget
        self.max_keys = max_keys
        self.clock = clock
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def _delay(self, count: int) -> float:
        if count < self.free:
            return 0.0
        return float(min(self.longest, self.first * 2 ** min(count - self.free, 32)))

    def _current(self, key: str, now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is not None and now - entry.last > max(self.forget, self._delay(entry.count)):
            del self._keys[key]
            return None
        return entry

    def wait(self, key: str) -> float:
        """Seconds before ``key`` may try again (0: now)."""
        now = self.clock()
        entry = self._current(key, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + self._delay(entry.count) - now)

    def fail(self, key: str) -> None:
        now = self.clock()
        entry = self._current(key, now)
        if entry is None:
            entry = _Failures(0, now)
        entry.count, entry.last = entry.count + 1, now
        self._keys[key] = entry
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)  # the longest quiet one

    def forgive(self, key: str) -> None:
        """Take back one failure (an attempt that turned out to succeed)."""
        entry = self._keys.get(key)
        if entry is not None:
            entry.count -= 1
            if entry.count <= 0:
                del self._keys[key]

    def clear(self, key: str) -> None:
        self._keys.pop(key, None)


def address_key(address: str) -> str:
    """An IPv6 client is one /64 (a host there picks any address it likes)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self.accounts = Backoff(free=ACCOUNT_FREE_FAILURES, clock=clock)
        self.addresses = Backoff(free=ADDRESS_FREE_FAILURES, clock=clock)

    def admit(self, username: str, address: str) -> None:
        """Let one attempt in, counted as a failure until ``succeeded``; or raise 429."""
        account, where = username, address_key(address)
        with self._lock:
            wait = max(self.accounts.wait(account), self.addresses.wait(where))
            if wait > 0:
                raise TooManyRequests(
                    f"too many failed logins for this account or from this address; "
                    f"try again in {max(1, round(wait))} s",
                    retry_after=wait,
                    code="login_backoff",
                )
            self.accounts.fail(account)
            self.addresses.fail(where)

    def withdrawn(self, username: str, address: str) -> None:
        """Take back an admitted attempt whose password was never checked (the gate
        answered ``busy``): a flood of others' logins must not use up a person's free
        failures with 503s they did not cause (attacker pass C: the admin's right
        password got 503 five times, then 429)."""
        with self._lock:
            self.accounts.forgive(username)
            self.addresses.forgive(address_key(address))

    def succeeded(self, username: str, address: str) -> None:
        """The account starts over; the address keeps its earlier failures."""
        with self._lock:
            self.accounts.clear(username)
            self.addresses.forgive(address_key(address))


class PasswordGate:
    """At most ``HASH_SLOTS`` password checks at once; waiters wait on the event loop."""

    def __init__(
        self,
        slots: int = HASH_SLOTS,
        *,
        wait: float = GATE_WAIT_SECONDS,
        max_waiting: int = GATE_MAX_WAITING,
    ) -> None:
        self._semaphore = asyncio.Semaphore(slots)
        self.wait_seconds = wait
        self.max_waiting = max_waiting
        self._waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._waiting >= self.max_waiting:
            raise Busy("too many logins at once; try again in a moment", retry_after=1)
        self._waiting += 1
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._semaphore.acquire()
        except TimeoutError:
            raise Busy("too many logins at once; try again in a moment", retry_after=1) from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._semaphore.release()
