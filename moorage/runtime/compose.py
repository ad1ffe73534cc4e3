"""Run Compose as a subprocess: ``docker compose`` (v2) when present, else ``docker-compose``.

Output is streamed line by line to the caller's log. Nothing here knows about
workloads; it runs one Compose command in one directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from moorage.errors import EngineError, EngineUnavailable


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
                env=self._env(),
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

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._docker_host:
            env["DOCKER_HOST"] = self._docker_host
        return env

    def run(
        self,
        args: list[str],
        *,
        cwd: Path,
        log: Callable[[str], None],
        timeout: float = 600,
        stdin: str | None = None,
    ) -> tuple[int, str]:
        """Run ``compose ARGS`` in ``cwd``; log each output line; return (exit code, output)."""
        cmd = [*self.command(), *args]
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd,
                env=self._env(),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"compose {' '.join(args[:3])} did not finish in {timeout:.0f} s"
            ) from None
        except OSError as exc:
            raise EngineUnavailable(f"cannot run compose: {exc.strerror}") from None
        output = (proc.stdout + proc.stderr).strip()
        for line in output.splitlines():
            log(line)
        return proc.returncode, output
