"""What keeps password guessing slow and cheap for the server: backoff and a gate.

``LoginGuard`` backs off per account and per client address: a few failures are
free, then each next attempt must wait twice as long as the one before (429 with
``Retry-After``). An attempt counts as a failure from the moment it is let in and
is forgiven only when it succeeds, so a burst of parallel guesses cannot all slip
in before the first one fails. Unknown accounts back off exactly like known ones.

``PasswordGate`` lets a few password checks run at once (``secrets.HASH_SLOTS``);
the rest wait on the event loop, not in a worker thread, for a short while and
then get 503. A login from an address a login succeeded from within ``TRUST_SECONDS``
(``LoginGuard.known``) waits in a queue of its own, served first: a flood of logins
from many addresses slowed a returning admin's to 2-5.5 s and turned one in ten away
(attacker pass E, M3); now it waits for one password check at most. All of it lives
in memory, per process, bounded in size.

A guesser can hold one account at the longest delay: the account's backoff then
binds every address no login to that account succeeded from, but not one a login to it
did succeed from, which meets only its own address backoff: five wrong passwords
from anywhere locked the admin's own web login out (attacker pass F, F4). Another
account's login does not free an address of it (attacker pass H: a viewer guessed the
admin's password 20 times per address it logged in from). API tokens and
``moorage token create`` keep working regardless.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
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
"""Logins waiting for a password check, in each of the gate's two queues."""
TRUST_SECONDS = 30 * 24 * 3600.0
"""How long an address a login succeeded from is served first by the gate."""


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


NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""RFC 6052's well-known prefix: an IPv4 host reached through NAT64/SIIT, its address in
the last 32 bits."""


def address_key(address: str) -> str:
    """An IPv6 client is one /64 (a host there picks any address it likes); an IPv4
    client written as IPv6 (``::ffff:a.b.c.d``, as a dual-stack proxy such as nginx's
    ``ipv6only=off`` forwards it, or ``64:ff9b::a.b.c.d`` through NAT64) is its IPv4
    address: as a /64, every IPv4 client was ``::/64`` and shared one bucket, one
    login back-off and one connection share (attacker pass H)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip in NAT64:
            return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        self.accounts = Backoff(free=ACCOUNT_FREE_FAILURES, clock=clock)
        self.addresses = Backoff(free=ADDRESS_FREE_FAILURES, clock=clock)
        self._succeeded: OrderedDict[str, float] = OrderedDict()
        """Address key -> when a login from it last succeeded (the newest last)."""
        self._owners: OrderedDict[tuple[str, str], float] = OrderedDict()
        """(account, address key) -> when a login to that account from it last succeeded."""

    def known(self, address: str) -> bool:
        """True when a login from ``address`` (its key: an IPv6 client is its /64)
        succeeded within ``TRUST_SECONDS``."""
        with self._lock:
            return self._known(address_key(address))

    def _known(self, where: str) -> bool:
        at = self._succeeded.get(where)
        return at is not None and self.clock() - at <= TRUST_SECONDS

    def _owned(self, account: str, where: str) -> bool:
        """Whether a login to ``account`` itself succeeded from ``where`` within
        ``TRUST_SECONDS``: only then does the account's backoff not bind there. An
        address ``known`` from another account's login did exempt it: a viewer who logged
        in once guessed the admin's password at the gate's pace, 20 guesses per address
        (attacker pass H)."""
        at = self._owners.get((account, where))
        return at is not None and self.clock() - at <= TRUST_SECONDS

    def admit(self, username: str, address: str) -> None:
        """Let one attempt in, counted as a failure until ``succeeded``; or raise 429."""
        account, where = username, address_key(address)
        with self._lock:
            known = self._owned(account, where)
            wait = max(0.0 if known else self.accounts.wait(account), self.addresses.wait(where))
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
        """The account starts over, unless a login to it succeeded from this address
        before (a guesser elsewhere keeps its wait: only this attempt is taken back); the
        address keeps its earlier failures, and is ``known`` from now on, and the
        account's own there (``_owned``)."""
        where = address_key(address)
        with self._lock:
            if self._owned(username, where):
                self.accounts.forgive(username)
            else:
                self.accounts.clear(username)
            self.addresses.forgive(where)
            now = self.clock()
            self._succeeded[where] = now
            self._succeeded.move_to_end(where)
            self._owners[username, where] = now
            self._owners.move_to_end((username, where))
            for seen in (self._succeeded, self._owners):
                while len(seen) > MAX_KEYS:
                    seen.popitem(last=False)


class PasswordGate:
    """At most ``slots`` password checks at once. The rest wait on the event loop in
    two queues of at most ``max_waiting`` each, for ``wait`` seconds, then get 503
    ``busy``; a freed slot goes to the first of the ``known`` queue before the other.
    Used from the event loop's thread only."""

    def __init__(
        self,
        slots: int = HASH_SLOTS,
        *,
        wait: float = GATE_WAIT_SECONDS,
        max_waiting: int = GATE_MAX_WAITING,
    ) -> None:
        self.wait_seconds = wait
        self.max_waiting = max_waiting
        self._free = slots
        self._queues: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @asynccontextmanager
    async def slot(self, *, known: bool = False) -> AsyncIterator[None]:
        """Hold a slot for the block; ``known``: the login comes from an address a login
        succeeded from (``LoginGuard.known``). Raises ``Busy``."""
        await self._acquire(known)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, known: bool) -> None:
        ahead = self._queues[True] if known else (*self._queues[True], *self._queues[False])
        if self._free > 0 and not ahead:
            self._free -= 1
            return
        queue = self._queues[known]
        if len(queue) >= self.max_waiting:
            raise Busy("too many logins at once; try again in a moment", retry_after=1)
        handed = asyncio.get_running_loop().create_future()
        queue.append(handed)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await handed
        except BaseException as exc:  # timed out or cancelled: give back what was handed
            if handed.done() and not handed.cancelled():
                self._release()
            else:  # a release may have passed over it already
                handed.cancel()
                with suppress(ValueError):
                    queue.remove(handed)
            if isinstance(exc, TimeoutError):
                raise Busy(
                    "too many logins at once; try again in a moment", retry_after=1
                ) from None
            raise

    def _release(self) -> None:
        """Hand the slot to the first waiter, known ones first; else it is free."""
        for queue in (self._queues[True], self._queues[False]):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1
