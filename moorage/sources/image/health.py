"""Wait until a freshly started container is healthy, or say why it is not.

Probes reach the container only through its published loopback port or
``docker exec``, never through a bridge address.

What the container or a health-check command printed goes into a failure only marked
(``moorage.program_output``), on the lines after the reason: a viewer reads the
deployment's error and log, and programs print their secrets. The "still waiting" lines
say how the last probe ended, never what it printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from moorage import program_output
from moorage.errors import DeployFailed
from moorage.runtime.engine import Container, Engine
from moorage.sources.image.config import HealthCheck, ImageConfig, http_port

LOG_TAIL = 20
PROGRESS_EVERY = 5.0
"""Seconds between "still waiting" lines: a long wait shows progress in the live log."""


def _dead(engine: Engine, container: Container) -> DeployFailed:
    tail = ""
    try:
        tail = engine.logs(container.id, LOG_TAIL).strip()
    except Exception:
        tail = ""
    state = "kept restarting" if container.restarts else container.state
    last = tail.splitlines()[-1][:300] if tail else ""
    code = container.exit_code
    if container.restarts and not code:  # started again since: its state says 0
        try:
            code = engine.last_exit_code(container.id)
        except Exception:
            code = None
    said = code if code is not None else "unknown"
    if last:
        return DeployFailed(
            f"the container {state} (exit code {said}); its last output:\n"
            f"{program_output.marked(last)}"
        )
    return DeployFailed(f"the container {state} (exit code {said})")


def wait_healthy(
    engine: Engine,
    container_id: str,
    config: ImageConfig,
    *,
    image_has_healthcheck: bool,
    publish_addr: str,
    log: Callable[[str], None],
) -> None:
    """Return once healthy; raise DeployFailed with the reason otherwise."""
    health = config.health or HealthCheck()
    deadline = time.monotonic() + health.timeout_seconds
    started = time.monotonic()
    limit = health.timeout_seconds
    if health.cmd:
        log(f"health: waiting for `{' '.join(health.cmd)}` to succeed (up to {limit:g} s)")
    elif health.http:
        log(f"health: waiting for HTTP {health.http} to answer (up to {limit:g} s)")
    elif image_has_healthcheck:
        log(f"health: waiting for the image's HEALTHCHECK to report healthy (up to {limit:g} s)")
    else:
        log(f"health: the container must keep running for {health.grace_seconds:g} s")
    last, printed = "", ""
    reported = started
    while True:
        container = engine.get(container_id)
        if container is None:
            raise DeployFailed("the new container disappeared while starting")
        if (
            container.state in ("exited", "dead")
            or container.restarts > 0
            or (container.state == "restarting" and container.exit_code not in (None, 0))
        ):
            # A restart policy may already have revived it: a restart is a crash all the same.
            raise _dead(engine, container)
        if image_has_healthcheck and not (health.cmd or health.http):
            if container.health == "unhealthy":
                raise DeployFailed("the image's HEALTHCHECK reports unhealthy")
        ok, last, printed = _probe(
            engine, container, config, health, image_has_healthcheck, publish_addr, started
        )
        if ok:
            log("health: healthy")
            return
        now = time.monotonic()
        if now >= deadline:
            if printed:
                raise DeployFailed(
                    f"not healthy after {health.timeout_seconds:g} s: {last}; its last output:\n"
                    f"{program_output.marked(printed)}"
                )
            raise DeployFailed(
                f"not healthy after {health.timeout_seconds:g} s" + (f": {last}" if last else "")
            )
        if now - reported >= PROGRESS_EVERY:
            reported = now
            log(
                f"health: still waiting, {now - started:.0f} s of {health.timeout_seconds:g} s"
                + (f" ({last})" if last else "")
            )
        time.sleep(health.interval_seconds)


def _probe(
    engine: Engine,
    container: Container,
    config: ImageConfig,
    health: HealthCheck,
    image_has_healthcheck: bool,
    publish_addr: str,
    started: float,
) -> tuple[bool, str, str]:
    """``(healthy, how the probe ended, what it printed)``: the last is program output."""
    if not container.running:
        return False, f"container is {container.state}", ""
    if health.cmd:
        code, output = engine.exec(container.id, list(health.cmd))
        return code == 0, f"command exited {code}", output.strip()[-200:]
    if health.http:
        port = http_port(health, config.ports)  # a row from before the model refused this
        if port is None:
            return False, "an http health check needs a published tcp port", ""
        host_port = container.ports.get((port, "tcp"))
        if host_port is None:
            return False, f"container port {port} is not published", ""
        url = f"http://{publish_addr}:{host_port}{health.http}"
        try:
            response = httpx.get(url, timeout=min(5.0, health.timeout_seconds))
        except httpx.HTTPError as exc:
            return False, f"GET {health.http}: {_unanswered(exc, port)}", ""
        return response.status_code < 400, f"GET {health.http} answered {response.status_code}", ""
    if image_has_healthcheck:
        if container.health == "unhealthy":
            return False, "the image's HEALTHCHECK reports unhealthy", ""
        return container.health == "healthy", f"HEALTHCHECK status {container.health}", ""
    return time.monotonic() - started >= health.grace_seconds, "still in the grace period", ""


def _unanswered(exc: httpx.HTTPError, port: int) -> str:
    """Why an HTTP probe got no answer, in the user's terms (the published port is
    Docker's proxy, which accepts even when nothing in the container listens)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time from container port {port}"
    if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.ReadError):
        return (
            f"nothing answered HTTP on container port {port} (does the app listen on "
            f"{port}, on all interfaces?)"
        )
    return f"{type(exc).__name__} from container port {port}"
