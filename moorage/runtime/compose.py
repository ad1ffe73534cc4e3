"""Run Compose as a subprocess: ``docker compose`` (v2) when present, else ``docker-compose``.

Output is streamed line by line to the caller's log, marked as program output
(``moorage.program_output``): Compose prints values of the file's variables (a
``container_name: ${TOKEN}``, an image reference, a command in a start error), and a
viewer reads the deployment's log. Nothing here knows about workloads; it runs one
Compose command in one directory.

Compose never sees the server's environment: only the base below (where programs,
the home and locale are, how to reach the daemon) plus the variables the caller
passes, which are what ``${NAME}`` in a Compose file resolves to. The server's own
secrets (``MOORAGE_ADMIN_PASSWORD``, say) must never be a ``${NAME}`` away.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from moorage import program_output
from moorage.errors import EngineError, EngineUnavailable

# What Compose and the Docker CLI need from the server's environment; nothing else passes.
BASE_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "TZ",
        "TMPDIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
BASE_PREFIXES = ("LC_", "XDG_", "DOCKER_", "COMPOSE_")
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class ResourceLimits:
    """Caps on one Compose process (and what it starts), set before it runs."""

    cpu_seconds: int
    memory_bytes: int

    def apply(self) -> None:
        """Runs in the child between fork and exec: no allocation-heavy work here."""
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))


@dataclass(frozen=True)
class Captured:
    code: int
    stdout: str
    stderr: str
    timed_out: bool = False


class ComposeRunner:
    def __init__(self, docker_host: str | None = None) -> None:
        self._docker_host = docker_host
        self._command: list[str] | None = None
        self._lock = threading.Lock()

    def command(self) -> list[str]:
        with self._lock:
            if self._command is None:
                self._command = self._detect()
            return list(self._command)

    def _detect(self) -> list[str]:
        docker = shutil.which("docker")
        if docker is not None:
            probe = subprocess.run(
                [docker, "compose", "version"],
                capture_output=True,
                text=True,
                timeout=30,
                env=self._env({}),
            )
            if probe.returncode == 0:
                return [docker, "compose"]
        legacy = shutil.which("docker-compose")
        if legacy is not None:
            return [legacy]
        raise EngineUnavailable(
            "neither 'docker compose' nor 'docker-compose' is installed; install Debian's "
            "docker-compose package"
        )

    def _env(self, variables: Mapping[str, str]) -> dict[str, str]:
        """The base, over the caller's variables: a workload cannot set PATH or DOCKER_HOST
        for Compose itself (they win over an env file, too, in v1 and v2)."""
        base = {
            k: v for k, v in os.environ.items() if k in BASE_NAMES or k.startswith(BASE_PREFIXES)
        }
        base["DOCKER_HOST"] = self._docker_host or base.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        return {**variables, **base}

    def _exec(
        self,
        args: list[str],
        *,
        cwd: Path,
        timeout: float,
        stdin: str | None,
        variables: Mapping[str, str] | None,
        limits: ResourceLimits | None,
    ) -> subprocess.CompletedProcess[str]:
        """Raises subprocess.TimeoutExpired; EngineUnavailable when Compose cannot start."""
        try:
            return subprocess.run(
                [*self.command(), *args],
                cwd=cwd,
                env=self._env(variables or {}),
                input=stdin,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                preexec_fn=limits.apply if limits is not None else None,
            )
        except OSError as exc:
            raise EngineUnavailable(f"cannot run compose: {exc.strerror}") from None

    def capture(
        self,
        args: list[str],
        *,
        cwd: Path,
        timeout: float,
        variables: Mapping[str, str] | None = None,
        limits: ResourceLimits | None = None,
    ) -> Captured:
        """Run ``compose ARGS`` in ``cwd`` and keep stdout and stderr apart (``config``)."""
        try:
            proc = self._exec(
                args, cwd=cwd, timeout=timeout, stdin=None, variables=variables, limits=limits
            )
        except subprocess.TimeoutExpired:
            return Captured(-1, "", "", timed_out=True)
        return Captured(proc.returncode, proc.stdout, proc.stderr)

    def run(
        self,
        args: list[str],
        *,
        cwd: Path,
        log: Callable[[str], None],
        timeout: float = 600,
        stdin: str | None = None,
        variables: Mapping[str, str] | None = None,
        limits: ResourceLimits | None = None,
    ) -> tuple[int, str]:
        """Run ``compose ARGS`` in ``cwd``; log each output line, marked as program output;
        return (exit code, output), the output as printed (a caller that keeps a part of it
        marks that part: ``program_output.marked``).

        ``variables`` are what ``${NAME}`` in the Compose file resolves to; ``limits`` caps
        the process (a command over its CPU budget is killed: a non-zero exit).
        """
        try:
            proc = self._exec(
                args, cwd=cwd, timeout=timeout, stdin=stdin, variables=variables, limits=limits
            )
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"compose {' '.join(args[:3])} did not finish in {timeout:.0f} s"
            ) from None
        output = (proc.stdout + proc.stderr).strip()
        for line in program_output.lines(output):
            log(line)
        return proc.returncode, output


def failed_run(command: str, code: int, output: str) -> str:
    """What a failed ``compose COMMAND`` says, to keep in a deployment's error: its exit
    code, then its last error line (``ERROR: ...`` from v1, ``Error ...`` from v2: the
    cause, where v1's last line is only "Encountered errors while bringing up the
    project.") and its last line, marked as program output (Compose prints the values of
    the file's variables, and a viewer reads the error)."""
    printed = program_output.lines(output)
    errors = [line for line in printed if line[1:].lstrip().lower().startswith("error")]
    kept = errors[-1:] + [line for line in printed[-1:] if line not in errors[-1:]]
    said = "; its last output:\n" + "\n".join(kept) if kept else ""
    return f"compose {command} exited {code}{said}"
