"""The e2e browser in a network namespace of its own, reaching the host's loopback through
a SOCKS5 proxy on a Unix socket.

Why: Chromium aborts every request in flight with ``net::ERR_NETWORK_CHANGED`` when an
address of any interface of its namespace changes, and the tests' Docker engine adds and
removes bridge networks all the time (a compose deploy, a teardown). In the same namespace
a POST was lost (a capture that never happened, CI on 345d466) and a stylesheet failed, so
``hooks.client.ts`` reloaded a form the test was filling (session 19's full run). Inside a
namespace of its own Chromium sees only its loopback, which never changes.

``chromium-netns.sh`` starts Chromium under ``unshare --net`` with socat forwarding its
127.0.0.1:1080 to ``SocksProxy``'s Unix socket; Chromium is told to send everything,
loopback included, to that proxy (``launch_args``). The proxy, in the test process's
namespace, connects only to 127.0.0.1 (RFC 1928, CONNECT with no authentication; any other
command, address type or host is refused with its reply code): the browser reaches what
the tests run and nothing else.

A machine where ``unshare --net`` is not allowed runs Chromium as before (``isolated``), with
a warning.
"""

from __future__ import annotations

import ipaddress
import os
import select
import shutil
import socket
import socketserver
import struct
import subprocess
import threading
from pathlib import Path

WRAPPER = Path(__file__).with_name("chromium-netns.sh")
INSIDE_PORT = 1080
"""Where socat listens inside the namespace (``chromium-netns.sh``)."""
CHUNK = 64 * 1024

# RFC 1928 section 6: reply codes.
SUCCEEDED, REFUSED_BY_RULES, COMMAND_UNSUPPORTED, ADDRESS_UNSUPPORTED = 0, 2, 7, 8


def isolated() -> bool:
    """Whether Chromium can run in a namespace of its own here (root, or a user namespace
    that allows it, with socat and ip installed). ``MOORAGE_E2E_SHARED_NETWORK=1`` says no
    (to see the failure this prevents: ``test_isolation.py``)."""
    if os.environ.get("MOORAGE_E2E_SHARED_NETWORK") == "1":
        return False
    if not (shutil.which("socat") and shutil.which("ip") and shutil.which("unshare")):
        return False
    probe = subprocess.run(
        ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def launch_args(socket_path: Path) -> tuple[str, list[str], dict[str, str | float | bool]]:
    """``(executable, extra arguments, environment)`` for Playwright's ``launch``: the
    wrapper, told to proxy loopback too (``<-loopback>`` drops Chromium's built-in bypass)."""
    env: dict[str, str | float | bool] = {**os.environ, "MOORAGE_E2E_SOCKS": str(socket_path)}
    args = [
        f"--proxy-server=socks5://127.0.0.1:{INSIDE_PORT}",
        "--proxy-bypass-list=<-loopback>",
    ]
    return str(WRAPPER), args, env


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(30)
        try:
            upstream = self._connect(client)
        except (OSError, ValueError):
            return  # a probe that closed at once, or a broken greeting
        if upstream is None:
            return
        with upstream:
            _pipe(client, upstream)

    def _connect(self, client: socket.socket) -> socket.socket | None:
        version, methods = _read(client, 2)
        _read(client, methods)
        if version != 5:
            return None
        client.sendall(b"\x05\x00")  # no authentication
        version, command, _reserved, kind = _read(client, 4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(bytes(_read(client, 4))))
        elif kind == 3:
            host = bytes(_read(client, _read(client, 1)[0])).decode("ascii")
        elif kind == 4:
            host = str(ipaddress.IPv6Address(bytes(_read(client, 16))))
        else:
            _reply(client, ADDRESS_UNSUPPORTED)
            return None
        (port,) = struct.unpack("!H", bytes(_read(client, 2)))
        if command != 1:
            _reply(client, COMMAND_UNSUPPORTED)
            return None
        if host not in ("127.0.0.1", "localhost", "::1"):
            _reply(client, REFUSED_BY_RULES)
            return None
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            _reply(client, 5)  # connection refused
            return None
        _reply(client, SUCCEEDED)
        return upstream


def _read(sock: socket.socket, size: int) -> bytearray:
    data = bytearray()
    while len(data) < size:
        got = sock.recv(size - len(data))
        if not got:
            raise ValueError("closed during the SOCKS handshake")
        data += got
    return data


def _reply(client: socket.socket, code: int) -> None:
    client.sendall(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""
    a.settimeout(None)
    b.settimeout(None)
    peers = {a: b, b: a}
    try:
        while True:
            ready, _, _ = select.select(list(peers), [], [], 300)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(CHUNK)
                if not data:
                    return
                peers[sock].sendall(data)
    except OSError:
        return


class SocksProxy(socketserver.ThreadingUnixStreamServer):
    """The host side: a SOCKS5 proxy on the Unix socket ``path``, serving on a daemon thread
    until ``close``."""

    daemon_threads = True

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        super().__init__(str(path), _Handler)
        self.path = path
        self._thread = threading.Thread(target=self.serve_forever, name="e2e-socks", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)
