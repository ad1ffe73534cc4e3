"""One Caddy process and its admin API (SPEC section 12): started as a child of the
Moorage server with a bootstrap config (admin endpoint on loopback, nothing persisted),
watched, and configured only by ``POST /load`` of a whole config. Caddy's JSON log
lines are kept in ``<data>/proxy/caddy.log`` and handed to ``on_log`` (the router
reads ACME errors from them). Admin API: caddyserver.com/docs/api.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from moorage.proxy.listeners import migrate_requests

log = logging.getLogger("moorage.proxy")
START_SECONDS = 15.0
MAX_LOG_BYTES = 8 * 1024 * 1024


class ProxyError(Exception):
    """Caddy could not be started, or refused a config (the message says why). Never an
    answer to a client: the router logs it and tries again."""


class CaddyProcess:
    """A ``caddy run`` child process and a client of its admin API."""

    def __init__(
        self,
        binary: str,
        admin_addr: str,
        workdir: Path,
        on_log: Callable[[dict[str, Any]], None] = lambda _entry: None,
    ) -> None:
        self.binary = binary
        self.admin = f"http://{admin_addr}"
        self.admin_addr = admin_addr
        self.workdir = workdir
        self.on_log = on_log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, bootstrap: dict[str, Any]) -> None:
        """Start Caddy with ``bootstrap`` and wait until its admin API answers; raises
        ProxyError when it exits or stays silent for ``START_SECONDS``."""
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._stop_orphan()
        unkept = migrate_requests()
        if unkept is not None:
            log.warning(
                "%s; a client may see a reset connection when Caddy loads a config "
                "(run: sysctl -w net.ipv4.tcp_migrate_req=1)",
                unkept,
            )
        path = self.workdir / "bootstrap.json"
        path.write_text(json.dumps(bootstrap))
        env = {
            "HOME": str(self.workdir),
            "XDG_DATA_HOME": str(self.workdir / "data"),
            "XDG_CONFIG_HOME": str(self.workdir / "config"),
            "PATH": "/usr/bin:/bin",
        }
        self._proc = subprocess.Popen(
            [self.binary, "run", "--config", str(path)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a ^C to the server is not Caddy's to take
        )
        assert self._proc.stderr is not None
        reader = threading.Thread(
            target=self._read_log, args=(self._proc.stderr,), name="caddy-log", daemon=True
        )
        reader.start()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if not self.alive():
                self._proc.wait()
                reader.join(5)  # it closes the pipe at its end
                raise ProxyError(f"caddy exited at start; see {self.workdir / 'caddy.log'}")
            if self.config() is not None:
                return
            time.sleep(0.05)
        self.stop()
        raise ProxyError(f"caddy's admin API did not answer on {self.admin_addr}")

    def _stop_orphan(self) -> None:
        """A Caddy already answering on our admin address is one a killed Moorage left
        behind (it runs in a session of its own): ask it to stop (``POST /stop``), so the
        new one can take the ports and no stale routes keep serving."""
        if self.alive() or self.config() is None:
            return
        log.warning("a caddy left running answers on %s: stopping it", self.admin_addr)
        try:
            httpx.post(f"{self.admin}/stop", timeout=10)
        except httpx.HTTPError:
            pass
        deadline = time.monotonic() + START_SECONDS
        while self.config() is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    def _read_log(self, stream: IO[bytes]) -> None:
        path = self.workdir / "caddy.log"
        with stream, open(path, "ab") as out:
            for raw in stream:
                if out.tell() < MAX_LOG_BYTES:
                    out.write(raw)
                    out.flush()
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    try:
                        self.on_log(entry)
                    except Exception:  # a reader's bug must not stop the log
                        log.exception("reading a caddy log line")

    def config(self) -> Any | None:
        """The config Caddy runs (``GET /config/``), or None when it does not answer, or
        answers no JSON (a Caddy stopping after ``POST /stop`` once answered 200 with an
        empty body, and the next Moorage's start-up failed on it)."""
        try:
            r = httpx.get(f"{self.admin}/config/", timeout=5)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        try:
            return r.json()
        except ValueError:
            return None

    def load(self, config: dict[str, Any]) -> None:
        """Replace Caddy's whole config (``POST /load``); it answers once the new config
        runs, or refuses it and keeps the old one. Raises ProxyError then."""
        try:
            r = httpx.post(
                f"{self.admin}/load",
                content=json.dumps(config),
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            raise ProxyError(f"caddy's admin API did not answer: {exc}") from None
        if r.status_code != 200:
            raise ProxyError(f"caddy refused the config: {r.text.strip()[:2000]}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
