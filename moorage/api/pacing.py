"""Requests per client address that no credential vouches for: a token bucket per
address (issue 12: nothing unauthenticated can wear the server down).

Every bound before this one was on what a request holds (a connection, a head, a body, a
worker thread); none was on how many requests one address sends. Each costs its parse
and its answer on the one event loop, however cheap the answer, and one attacker
process on the same two cores sending made-up webhook URLs at about 830 requests a
second put a logged-in list, a login and a signed webhook at 4.5-5.3 s (attacker pass
G). Here:

- ``Buckets``: an address may send ``burst`` requests at once and ``rate`` a second on
  average (``Settings.anonymous_rate``, ``MOORAGE_ANONYMOUS_RATE``; the burst is
  ``BURST_SECONDS`` of the rate: a browser's first load of the UI is about 60). Every
  request spends one, answered or refused, so an address that keeps sending runs into
  debt (at most ``MAX_DEBT_SECONDS`` of it) and waits it out: a flood is paid for at the
  rate, not at the speed of the refusals.
- ``Pace``: ASGI middleware. A request ``vouch`` knows (a bearer token or session cookie
  the server accepts, a POST to a webhook that exists: ``api/cache.vouching``) is not
  counted, but for a webhook call answered other than ``DELIVERED`` (forged, a replay),
  which spends from its address's bucket of such calls (``Pace.hooks``), and a webhook
  call from an address in debt there is refused; one a token or cookie vouches
  for marks its connection trusted (a webhook URL vouches for its own request only:
  ``HOOKS``); any other spends from its address
  (``security.logins.address_key``, after uvicorn's proxy headers: behind a trusted
  proxy, the address it names). Past the budget: 429 ``too_many_requests`` with
  ``Retry-After``, before any route or body is read.
- ``connections.GuardedH11`` stops reading a connection that is not trusted while its own
  address is in debt (``Buckets.debt``) and its next request names no credential, so a
  flood's next requests wait in the kernel unparsed rather than costing a refusal each;
  a connection that carried a vouched request, and a request naming a token, a session
  or a webhook URL, are read, so a logged-in browser behind the flooding address's NAT
  is not held (a flood that names made-up ones is parsed and refused, as without
  holds).

What this does not stop: many addresses (each has a bucket; IPv6 clients share one per
/64). Their cost is still bounded per request by the rest of ``api/``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from moorage import metrics
from moorage.api.limits import ASGIApp, Message, Receive, Scope, Send, send_error
from moorage.security.logins import address_key

HOOKS = "/hooks/"
"""Where the webhook URLs are (``routes/hooks.py``): a request vouched for by one does not
trust its connection."""
DELIVERED = 202
"""A webhook call's answer that spends nothing (``routes/hooks.py``: queued, or filtered
out); any other answer to a call spends from its address (``Pace._hook``)."""

BURST_SECONDS = 30.0
"""The burst an address may send at once: this many seconds of its rate (a UI's first
load is about 60 requests; at 10 s, five visitors behind one NAT opening it together got
90 refusals among them: attacker pass H)."""
MAX_DEBT_SECONDS = 60.0
"""The longest an address in debt waits, however much it sent."""
MAX_ADDRESSES = 100_000
"""Buckets kept at once; past it, the full ones go (they hold nothing), then all."""

Vouch = Callable[[Scope], Awaitable[bool]]


class Trusting(Protocol):
    """What ``Pace`` marks on a connection that carried a vouched request
    (``connections.GuardedH11``)."""

    trusted: bool


class Buckets:
    """A token bucket per address: ``rate`` tokens a second (> 0), at most ``burst``,
    and at least ``-rate * MAX_DEBT_SECONDS`` (a debt). ``clock`` is in seconds."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"a rate must be over 0 requests a second, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * BURST_SECONDS)
        self.floor = -rate * MAX_DEBT_SECONDS
        self.clock = clock
        self._balance: dict[str, tuple[float, float]] = {}  # address: (tokens, at)

    def _now(self, address: str) -> tuple[float, float]:
        now = self.clock()
        tokens, at = self._balance.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate), now

    def spend(self, address: str) -> float:
        """Spend one token of ``address``: 0.0 when it had one, else the seconds until
        it has one again (its debt, this request's included), at most
        ``MAX_DEBT_SECONDS``."""
        tokens, now = self._now(address)
        if address not in self._balance and len(self._balance) >= MAX_ADDRESSES:
            self._prune()
        tokens = max(self.floor, tokens - 1)
        self._balance[address] = (tokens, now)
        return 0.0 if tokens >= 0 else (1 - tokens) / self.rate

    def debt(self, address: str) -> float:
        """Seconds until ``address`` has a token again (0.0: it has one); spends none."""
        if address not in self._balance:
            return 0.0
        tokens, _now = self._now(address)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def _prune(self) -> None:
        now = self.clock()
        self._balance = {
            a: (t, at)
            for a, (t, at) in self._balance.items()
            if t + (now - at) * self.rate < self.burst
        }
        if len(self._balance) >= MAX_ADDRESSES:
            self._balance.clear()  # many addresses in debt at once: forgive all of them


class Pace:
    """Count the requests no credential vouches for against their address's bucket; a
    request past it is 429 ``too_many_requests`` unread (module docstring).

    ``connection`` names the connection a request came on (``connections.current``: a
    ``GuardedH11``), or None (an in-process test client)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        buckets: Buckets | None,
        vouch: Vouch,
        connection: Callable[[], Trusting | None],
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.vouch = vouch
        self.connection = connection
        self.hooks = (
            Buckets(buckets.rate, burst=buckets.burst, clock=buckets.clock) if buckets else None
        )
        """Each address's webhook calls that queued nothing (``_hook``), apart from its
        other requests: made-up webhook URLs from a Git host's address (anyone may point a
        webhook of their own repository at them) put it in debt, and its correct
        deliveries were refused."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.buckets is None:
            await self.app(scope, receive, send)
            return
        if await self.vouch(scope):
            if scope["path"].startswith(HOOKS):
                assert self.hooks is not None  # made with ``buckets``
                await self._hook(self.hooks, _address(scope), scope, receive, send)
                return
            connection = self.connection()
            if connection is not None:
                connection.trusted = True
            await self.app(scope, receive, send)
            return
        wait = self.buckets.spend(_address(scope))
        if not wait:
            await self.app(scope, receive, send)
            return
        await _refuse(
            wait, "requests than the server answers without a login", send, ", or send an API token"
        )

    async def _hook(
        self, buckets: Buckets, address: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A call to a webhook that exists. Its URL vouches for this request only: it sits
        in a Git host's settings and delivery logs, and a connection it trusted was never
        held again, the rest of a flood refused as fast as it came (attacker pass I). A
        call answered other than ``DELIVERED`` (a forged signature, a replay, one over
        the trigger's rate) spends from its address, and an address in debt is refused
        429 before the body is read: forged calls were never counted, each cost a worker
        thread a read and an HMAC of up to 1 MiB, at any rate (attacker pass J). A Git
        host that delivers correctly never spends. ``buckets`` counts these calls only
        (``hooks``): an address's other requests never refuse its deliveries."""
        wait = buckets.debt(address)
        if wait:
            buckets.spend(address)
            await _refuse(wait, "webhook calls that queued nothing (bad signatures, replays)", send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != DELIVERED:
                buckets.spend(address)
            await send(message)

        await self.app(scope, receive, counted)


def _address(scope: Scope) -> str:
    """The bucket key of a request's client (``security.logins.address_key``); "" for
    none. Asked only of requests that are counted: a token's were never parsed for it."""
    client = scope.get("client")
    return address_key(client[0]) if client else ""


async def _refuse(wait: float, what: str, send: Send, hint: str = "") -> None:
    """429 ``too_many_requests`` (with ``Retry-After``) for an address ``wait`` s in debt,
    that sent too many ``what``; ``hint`` ends the message."""
    seconds = math.ceil(wait)
    metrics.PACED.labels("refused").inc()
    await send_error(
        send,
        429,
        "too_many_requests",
        f"this address sent more {what}; try again in {seconds} s{hint}",
        {"retry_after": seconds},
        extra_headers=[(b"retry-after", str(seconds).encode())],
    )
