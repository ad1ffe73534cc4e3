"""A Compose file as data: its cost bounded before anything parses it, then the model
Compose itself resolves it to.

``check_cost`` walks the file's YAML events (PyYAML's event API: no tree is built)
and refuses it when its aliases would expand past a small bound or it nests too
deep. A 1 KB file of nested aliases ("billion laughs") expands to billions of nodes
in anything that walks the tree; the event walk counts them in one linear pass.
Nothing else may parse a Compose file before this check: ``load`` runs it first.

``resolve`` runs ``config`` (``docker compose config`` or ``docker-compose config``)
in a directory of its own holding the file and the workload's env file, with the
workload's env as the variables ``${NAME}`` resolves to, and answers the model
Compose prints: interpolated, ``extends`` and ``include`` merged. That model is what
``sources.policy`` judges. The subprocess runs under a CPU, memory and wall-clock
cap, and one input is resolved once: parallel callers with the same file and env
wait for the first (single-flight), later ones read the cached answer.

Never hand the server's own environment to Compose: ``compose_variables`` is the
only environment ``config`` and the kind's ``deploy`` see besides the runner's base.
It holds only the variables the file names (``${NAME}`` or ``$NAME``), and never one
that Compose's own program reads as a setting (``RUNTIME_NAMES``): Compose runs as
root, and ``LD_PRELOAD``, ``PYTHONWARNINGS`` (with ``BROWSER``) or ``PYTHONPATH`` in
its environment run code of the workload's choosing on the host. A file that names
such a variable the workload sets is refused (``refuse_runtime_names``); the value
still reaches the containers (the override file carries the whole env). Nor may a file
read what of the server's environment Compose does get (its home, proxy, daemon
address): a file that interpolates such a name is refused (``refuse_server_names``).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moorage.errors import Busy, InvalidInput
from moorage.runtime.compose import BASE_NAMES, BASE_PREFIXES, ComposeRunner, ResourceLimits

COMPOSE_FILE = "compose.yml"
ENV_FILE = "moorage.env"

# Nodes that aliases (``*a``, ``<<: *a``) may add to a file once expanded. Compose files
# share a few blocks this way (a common environment, a logging block); thousands of
# nodes is generous, and a billion-laughs file needs billions.
MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 64

# ``config`` reads one small file: a second of CPU and a few hundred MiB are plenty (v1
# reads a 10-service file in about 0.5 s). Every later Compose command reads the file
# again, so what passes here is what each ``up``, ``down`` and ``logs`` costs: a file
# that needs more than 5 s (a long ``extends`` chain) is refused.
CONFIG_LIMITS = ResourceLimits(cpu_seconds=5, memory_bytes=1024**3)
# The kind's own Compose commands (``up``, ``down``, ``logs``): the same file, plus the
# waiting ``up`` does; bounded so that no command runs away with a core.
RUN_LIMITS = ResourceLimits(cpu_seconds=120, memory_bytes=1024**3)
CONFIG_TIMEOUT = 30.0
CACHE_SIZE = 256
# ``config`` runs at once, at most: a costly file (a long ``extends`` chain takes seconds
# of CPU, each a little different so no answer is reused) keeps one core, never all.
CONFIG_SLOTS = max(1, (os.cpu_count() or 2) // 2)

# Names Compose or the Docker client read as their own settings (project name, files,
# profiles, the daemon's address): never taken from a workload's env for Compose itself.
# They still reach the containers through the env file.
STEERING_PREFIXES = ("COMPOSE_", "DOCKER_", "BUILDKIT_")

# Names the programs Compose runs as read from their environment as settings: the C
# library's dynamic loader and resolver (glibc's list of variables it drops for setuid
# programs, ``sysdeps/generic/unsecvars.h``), Python (v1 is a Python program; the
# interpreter reads PYTHON*, ``webbrowser`` reads BROWSER), OpenSSL and the HTTP
# clients' TLS and proxy settings, the Go runtime (v2), the shell, and the locations
# of configuration (HOME holds ``.docker/config.json``, whose credential helpers the
# client runs). Compared in upper case. Locale and time zone (LANG, LC_*, TZ) pass.
RUNTIME_NAMES = frozenset(
    {
        *("GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN"),
        *("LOCPATH", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR"),
        *("TZDIR", "PATH", "HOME", "SHELL", "BASH_ENV", "ENV", "IFS", "CDPATH", "PS4"),
        *("BROWSER", "PAGER", "EDITOR", "VISUAL", "SSLKEYLOGFILE", "SSL_CERT_FILE"),
        *("SSL_CERT_DIR",),
        *("OPENSSL_CONF", "OPENSSL_MODULES", "OPENSSL_ENGINES", "REQUESTS_CA_BUNDLE"),
        *("CURL_CA_BUNDLE", "NETRC", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"),
        *("GODEBUG", "GOTRACEBACK", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GOCOVERDIR"),
    }
)
RUNTIME_PREFIXES = ("LD_", "PYTHON", "MALLOC_", "XDG_", "GIT_", "SSH_")  # git: v2's remote loader
# Compose's variable syntax: ``$NAME``, ``${NAME}``, ``${NAME:-default}`` and the like. Read
# over the whole text (comments, ``$$`` escapes too): a name too many is harmless.
REFERENCE = re.compile(r"\$\{?([_A-Za-z][_A-Za-z0-9]*)")
# What Compose's interpolation reads: a name after an odd run of ``$`` (``$$`` is a ``$``
# left for the container: ``$$HOME`` is the container's home, ``$$$HOME`` the server's).
INTERPOLATED = re.compile(r"(?<!\$)(?:\$\$)*\$\{?([_A-Za-z][_A-Za-z0-9]*)")
# Of the server's environment that ``runtime.compose`` hands Compose, what a file may
# read: the time zone and locale (``TZ=${TZ}`` is a common idiom) and the project name
# Compose sets itself.
SERVER_NAMES_SHOWN = frozenset({"TZ", "LANG", "LANGUAGE", "COMPOSE_PROJECT_NAME"})


def check_cost(text: str) -> None:
    """Refuse a file whose aliases expand past ``MAX_ALIAS_NODES`` or that nests past
    ``MAX_DEPTH``; raise ValueError naming the line. Linear in the file's length."""
    sizes: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of each open collection
    added = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise ValueError(_at(event, f"compose file nests deeper than {MAX_DEPTH}"))
                stack.append((event.anchor, 1))
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, count = stack.pop()
                if anchor is not None:
                    sizes[anchor] = count
                _add(stack, count)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                _add(stack, 1)
            elif isinstance(event, yaml.AliasEvent):
                size = sizes.get(str(event.anchor))
                if size is None:
                    # Unknown, or an alias inside its own anchor: a structure without end.
                    raise ValueError(_at(event, f"alias *{event.anchor} names no finished node"))
                added += size
                if added > MAX_ALIAS_NODES:
                    raise ValueError(
                        _at(
                            event,
                            f"compose file's aliases expand to more than {MAX_ALIAS_NODES} "
                            "nodes; write the repeated parts out or share fewer",
                        )
                    )
                _add(stack, size)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"compose file is not valid YAML{where}") from None


def _add(stack: list[tuple[str | None, int]], count: int) -> None:
    if stack:
        anchor, total = stack[-1]
        stack[-1] = (anchor, total + count)


def _at(event: yaml.Event, message: str) -> str:
    mark = event.start_mark
    return f"{message} (line {mark.line + 1})" if mark is not None else message


def load(text: str) -> Any:
    """The file as written (aliases expanded, nothing interpolated), once its cost passed;
    ValueError when it is too costly or not YAML."""
    check_cost(text)
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"compose file is not valid YAML{where}") from None


def load_mapping(text: str) -> dict[str, Any]:
    """``load``, for a file that must be a mapping; InvalidInput otherwise."""
    try:
        doc = load(text)
    except ValueError as exc:
        raise InvalidInput(
            f"invalid config for kind 'compose': {exc}",
            code="invalid_config",
            details=[{"field": "compose", "message": str(exc)}],
        ) from None
    if not isinstance(doc, dict):
        raise InvalidInput(
            "invalid config for kind 'compose': compose file must be a YAML mapping",
            code="invalid_config",
            details=[{"field": "compose", "message": "compose file must be a YAML mapping"}],
        )
    return doc


def runtime_name(name: str) -> bool:
    """Whether Compose's own program reads ``name`` as a setting (``RUNTIME_NAMES``)."""
    upper = name.upper()
    return upper in RUNTIME_NAMES or upper.startswith(RUNTIME_PREFIXES)


def variable_names(text: str) -> set[str]:
    """The variable names ``text`` uses (``REFERENCE``: a name too many, never one too few)."""
    return set(REFERENCE.findall(text))


def compose_variables(env: Mapping[str, str], text: str) -> dict[str, str]:
    """The variables ``${NAME}`` in ``text`` resolves to: the workload's env vars the file
    names, minus Compose's own settings and the names its program reads."""
    names = variable_names(text)
    return {
        k: v
        for k, v in env.items()
        if k in names and not k.startswith(STEERING_PREFIXES) and not runtime_name(k)
    }


def refuse_runtime_names(text: str, env: Mapping[str, str]) -> None:
    """InvalidInput (422) when the file names a variable the workload sets that Compose's
    program would read as its own setting: Moorage does not hand it to Compose, so the
    file would silently resolve it to nothing."""
    named = sorted(n for n in variable_names(text) if n in env and runtime_name(n))
    if named:
        shown = ", ".join(f"${{{n}}}" for n in named)
        message = (
            f"{shown}: Compose's own program reads {'these' if len(named) > 1 else 'this'} "
            "from its environment, so Moorage does not pass it to Compose; rename the "
            "variable the file uses (the containers still get every env var)"
        )
        raise _invalid(message)


def server_name(name: str) -> bool:
    """Whether Compose fills ``${name}`` from the server's own environment: the names
    ``runtime.compose`` passes its process (``BASE_NAMES``, ``BASE_PREFIXES``), which win
    over the workload's variables, less ``SERVER_NAMES_SHOWN`` and ``LC_*``."""
    if name in SERVER_NAMES_SHOWN or name.startswith("LC_"):
        return False
    return name in BASE_NAMES or name.startswith(BASE_PREFIXES)


def refuse_server_names(text: str) -> None:
    """InvalidInput (422) when the file interpolates a name Compose would fill from the
    Moorage server's own environment (``server_name``), set by the workload or not: its
    value reached the model, and so a container's command, labels or env, which an
    operator reads (attacker pass I: ``${HTTPS_PROXY}`` gave the server's proxy URL with
    its password, ``${DOCKER_HOST}`` the engine's address, ``${HOME}`` the server's home).
    Read over the whole text, comments too (a name too many is a refusal that says
    what to write instead, never a leak)."""
    named = sorted({n for n in INTERPOLATED.findall(text) if server_name(n)})
    if named:
        shown = ", ".join(f"${{{n}}}" for n in named)
        escaped = ", ".join(f"$${n}" for n in named)
        message = (
            f"{shown}: Compose would fill {'these' if len(named) > 1 else 'this'} in from the "
            "Moorage server's own environment, not the workload's; rename the variable and "
            f"set it in the workload's env, or write {escaped} for the container to expand"
        )
        raise _invalid(message)


def env_file_text(env: Mapping[str, str]) -> tuple[str, list[str]]:
    """The workload's env as a Compose env file, and the keys left out (a value with a
    line break cannot be written in one)."""
    lines, skipped = [], []
    for key, value in sorted(env.items()):
        if "\n" in value or "\r" in value:
            skipped.append(key)
            continue
        lines.append(f"{key}={value}")
    return "\n".join(lines) + ("\n" if lines else ""), skipped


@dataclass(frozen=True)
class Resolved:
    """A Compose file as written and as Compose resolved it, in ``directory``."""

    written: dict[str, Any]
    model: dict[str, Any]
    directory: str
    """The directory it was resolved in: the workload's own; relative paths lie below it."""
    project: str
    """The project name it was resolved under: v2 names the project's own networks and
    volumes ``<project>_<key>``. Random, so a file cannot name another's to pass as its own."""


@dataclass
class _Flight:
    done: threading.Event
    result: Resolved | None = None
    error: BaseException | None = None


class Resolver:
    """Runs ``config`` once per distinct (file, env) and remembers the answer."""

    def __init__(self, runner: ComposeRunner | None = None, cache_size: int = CACHE_SIZE) -> None:
        self._runner = runner or ComposeRunner()
        self._lock = threading.Lock()
        self._flights: OrderedDict[str, _Flight] = OrderedDict()
        self._cache_size = cache_size
        self._slots = threading.BoundedSemaphore(CONFIG_SLOTS)

    def resolve(self, text: str, env: Mapping[str, str]) -> Resolved:
        """The resolved model; InvalidInput when Compose refuses the file (or takes too long).

        An answer about the file (the model, or Compose's refusal) is kept; any other
        failure (Compose missing, say) reaches the callers waiting on it and is forgotten.
        """
        written = load_mapping(text)
        key = _key(text, env)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight(threading.Event())
            self._flights.move_to_end(key)
        if leader:
            try:
                flight.result = self._run(text, env, written)
            except InvalidInput as exc:
                flight.error = exc
            except BaseException as exc:
                flight.error = exc
                with self._lock:
                    self._flights.pop(key, None)
            finally:
                flight.done.set()
                with self._lock:
                    while len(self._flights) > self._cache_size:
                        self._flights.popitem(last=False)
        else:
            flight.done.wait()
        if isinstance(flight.error, InvalidInput):
            # A fresh exception per caller: one raised object must not be shared by threads.
            raise InvalidInput(
                flight.error.message, code=flight.error.code, details=flight.error.details
            )
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result

    def _run(self, text: str, env: Mapping[str, str], written: dict[str, Any]) -> Resolved:
        refuse_runtime_names(text, env)
        refuse_server_names(text)
        if not self._slots.acquire(timeout=CONFIG_TIMEOUT):
            raise Busy("Compose is busy reading other files; try again in a moment", retry_after=5)
        try:
            return self._run_config(text, env, written)
        finally:
            self._slots.release()

    def _run_config(self, text: str, env: Mapping[str, str], written: dict[str, Any]) -> Resolved:
        with tempfile.TemporaryDirectory(prefix="moorage-compose-") as tmp:
            directory = Path(tmp)
            (directory / COMPOSE_FILE).write_text(text)
            (directory / ENV_FILE).write_text(env_file_text(env)[0])
            project = f"moorage-check-{secrets.token_hex(8)}"
            done = self._runner.capture(
                ["-p", project, "-f", COMPOSE_FILE, "config"],
                cwd=directory,
                timeout=CONFIG_TIMEOUT,
                variables=compose_variables(env, text),
                limits=CONFIG_LIMITS,
            )
            if done.timed_out:
                raise _refused(f"Compose took longer than {CONFIG_TIMEOUT:.0f} s to read it")
            if done.code != 0:
                lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
                raise _refused(
                    " ".join(lines[-3:]) if lines else f"compose config exited {done.code}"
                )
            try:
                model = yaml.load(done.stdout, Loader=yaml.CSafeLoader)
            except yaml.YAMLError:
                raise _refused("Compose printed a model Moorage cannot read") from None
            if not isinstance(model, dict):
                raise _refused("Compose printed no model")
            return Resolved(written, model, str(directory), project)


def _refused(verdict: str) -> InvalidInput:
    return _invalid(f"Compose refuses the file: {verdict}", detail=verdict)


def _invalid(message: str, detail: str | None = None) -> InvalidInput:
    """422 ``invalid_config`` on the ``compose`` field: ``message``, and ``detail`` (or
    ``message``) as the field's."""
    return InvalidInput(
        f"invalid config for kind 'compose': {message}",
        code="invalid_config",
        details=[{"field": "compose", "message": detail or message}],
    )


def _key(text: str, env: Mapping[str, str]) -> str:
    digest = hashlib.sha256(text.encode())
    for k, v in sorted(env.items()):
        digest.update(b"\0" + k.encode() + b"=" + v.encode())
    return digest.hexdigest()


RESOLVER = Resolver()
"""The process's resolver: create, update, env changes and deploys share its answers."""
