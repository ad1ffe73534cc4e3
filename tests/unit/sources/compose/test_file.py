"""A Compose file's cost is bounded before it is parsed, and one input is resolved once."""

from __future__ import annotations

import re
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from moorage.errors import Busy, InvalidInput
from moorage.runtime.compose import Captured, ComposeRunner, ResourceLimits
from moorage.sources.compose import file as compose_file
from moorage.sources.compose.config import ComposeConfig


def laughs(levels: int = 9, width: int = 9) -> str:
    """A billion-laughs file: each level an anchored list of ``width`` aliases of the last."""
    lines = ['  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "services:\n  web:\n    image: x\nx-bomb:\n" + "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_in_linear_time_and_memory() -> None:
    text = laughs()
    assert len(text) < 1200
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(ValueError, match="aliases expand to more than"):
        compose_file.check_cost(text)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024


def test_the_model_refuses_it_before_anything_parses_the_file() -> None:
    with pytest.raises(ValueError, match="aliases expand"):
        ComposeConfig.model_validate({"compose": laughs()})


def test_shared_blocks_stay_fine() -> None:
    text = (
        "x-common: &common\n"
        "  restart: always\n"
        "  logging: {driver: json-file, options: {max-size: 10m}}\n"
        "services:\n" + "".join(f"  s{i}:\n    <<: *common\n    image: x\n" for i in range(100))
    )
    doc = compose_file.load(text)
    assert doc["services"]["s99"]["restart"] == "always"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "[" * 100 + "]" * 100, "nests deeper"),
        ("a: &a [*a]", "names no finished node"),
        ("a: *nowhere", "names no finished node"),
        ("services: [", "not valid YAML"),
    ],
    ids=["deep", "recursive", "undefined alias", "broken"],
)
def test_other_costly_or_broken_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compose_file.check_cost(text)


def test_the_workload_env_interpolates_but_never_steers_compose() -> None:
    env = {"APP": "1", "COMPOSE_PROJECT_NAME": "other", "DOCKER_HOST": "tcp://evil:2375"}
    text = "services:\n  web:\n    image: x:${APP}-$COMPOSE_PROJECT_NAME-${DOCKER_HOST:-y}\n"
    assert compose_file.compose_variables(env, text) == {"APP": "1"}


# Names Compose's own program (Python for v1, Go for v2, the C library under both) reads
# as settings, each a way to run code as root, write a host file or redirect the client.
RUNTIME = [
    *("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES"),
    *("MALLOC_CHECK_", "PYTHONWARNINGS", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"),
    *("BROWSER", "SSLKEYLOGFILE", "OPENSSL_CONF", "HOME", "XDG_CONFIG_HOME", "https_proxy"),
    *("ALL_PROXY", "REQUESTS_CA_BUNDLE", "GODEBUG", "BASH_ENV", "PATH", "ld_preload"),
    *("GIT_SSH_COMMAND", "GIT_CONFIG_COUNT", "SSH_AUTH_SOCK"),
]


@pytest.mark.parametrize("name", RUNTIME)
def test_compose_never_gets_a_name_its_program_reads(name: str) -> None:
    env = {name: "/tmp/x", "APP": "1", "UNNAMED": "2"}
    text = f"services:\n  web:\n    image: x:${{APP}}\n    command: ${name}\n"
    assert compose_file.compose_variables(env, text) == {"APP": "1"}
    with pytest.raises(InvalidInput, match=re.escape(f"${{{name}}}")) as refused:
        compose_file.refuse_runtime_names(text, env)
    assert refused.value.code == "invalid_config"
    compose_file.refuse_runtime_names(text, {"APP": "1"})  # named but not set: its default
    compose_file.refuse_runtime_names("services: {}\n", env)  # set but not named: fine


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("a: ${A}", {"A"}),
        ("a: $A-$B_2", {"A", "B_2"}),
        ("a: ${A:-${B}} ${C-x} ${D:?no} ${E?no} ${F:+y}", {"A", "B", "C", "D", "E", "F"}),
        ("a: $$A ${1X} $ A", {"A"}),  # an escape counts (a name too many is harmless)
        ("a: '#${A}' # ${B}", {"A", "B"}),
    ],
)
def test_only_the_names_a_file_uses_reach_compose(text: str, names: set[str]) -> None:
    env = {k: "v" for k in ("A", "B", "B_2", "C", "D", "E", "F", "G", "X")}
    assert set(compose_file.compose_variables(env, text)) == names


def test_a_file_naming_a_runtime_variable_the_workload_sets_is_refused_before_compose() -> None:
    runner = SlowRunner()
    resolver = compose_file.Resolver(runner)
    with pytest.raises(InvalidInput, match="PYTHONPATH"):
        resolver.resolve("services:\n  web:\n    image: ${PYTHONPATH}\n", {"PYTHONPATH": "/"})
    assert runner.calls == 0
    resolver.resolve("services:\n  web:\n    image: ${APP}\n", {"APP": "x", "LD_PRELOAD": "/e"})
    assert runner.seen[-1]["variables"] == {"APP": "x"}


# Names whose value Compose takes from the server's own environment (``runtime.compose``
# passes them to its process, and they win over the workload's variables): a proxy's
# password, DOCKER_HOST's user and host, the server's home and user (attacker pass I).
SERVER_NAMES = [
    *("HTTPS_PROXY", "http_proxy", "NO_PROXY", "DOCKER_HOST", "DOCKER_CONFIG"),
    *("DOCKER_CERT_PATH", "COMPOSE_FILE", "HOME", "PATH", "USER", "LOGNAME", "TMPDIR"),
    *("SSL_CERT_FILE", "XDG_RUNTIME_DIR"),
]
# Each way Compose's interpolation reads a name (an odd run of ``$`` before it).
SYNTAXES = ["${%s}", "$%s", "${%s:-d}", "${%s-d}", "${%s:?e}", "${%s?e}", "${A:-${%s}}", "$$$%s"]


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("name", SERVER_NAMES)
def test_a_file_never_reads_the_servers_own_environment(name: str, syntax: str) -> None:
    text = f"services:\n  web:\n    image: x\n    command: echo '{syntax % name}'\n"
    for env in ({}, {name: "mine"}):  # set by the workload or not: the server's wins
        with pytest.raises(InvalidInput, match=re.escape(f"${{{name}}}")) as refused:
            compose_file.refuse_server_names(text)
        assert refused.value.code == "invalid_config"
        assert "$$" in refused.value.message  # how to leave it to the container
        with pytest.raises(InvalidInput):
            compose_file.Resolver(SlowRunner()).resolve(text, env)


@pytest.mark.parametrize(
    "value",
    ["$$HOME", "$${HOME}", "$$$$PATH", "${TZ}", "${LANG}", "$LC_ALL", "${COMPOSE_PROJECT_NAME}"],
)
def test_an_escaped_name_or_the_locale_is_not_the_servers_secret(value: str) -> None:
    """``$$NAME`` is the container's to expand; the time zone and locale are no secret."""
    compose_file.refuse_server_names(f"services:\n  web:\n    image: x\n    command: {value}\n")


def test_compose_itself_would_fill_in_the_servers_proxy_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the real Compose: the server's ``HTTPS_PROXY`` reaches the model (and the
    container's command, which an operator reads in its log); the resolver refuses the
    file before Compose reads it, and an escaped name stays the container's."""
    secret = "http://moorage:s3cret@proxy.invalid:3128"
    monkeypatch.setenv("HTTPS_PROXY", secret)
    text = "services:\n  web:\n    image: x\n    command: echo ${HTTPS_PROXY}\n"
    (tmp_path / "compose.yaml").write_text(text)
    plain = ComposeRunner().capture(["-f", "compose.yaml", "config"], cwd=tmp_path, timeout=60)
    assert secret in plain.stdout  # what Compose does with the server's environment
    resolver = compose_file.Resolver(ComposeRunner())
    with pytest.raises(InvalidInput, match="HTTPS_PROXY"):
        resolver.resolve(text, {})
    escaped = resolver.resolve(text.replace("${", "$${"), {})
    assert "s3cret" not in str(escaped.model)


class SlowRunner(ComposeRunner):
    """A runner whose ``config`` takes a while and is counted: no Compose needed."""

    def __init__(self, output: str = "services:\n  web:\n    image: x\n", code: int = 0) -> None:
        super().__init__()
        self.calls = 0
        self.output, self.code = output, code
        self.seen: list[dict[str, Any]] = []
        self._count = threading.Lock()

    def capture(
        self,
        args: list[str],
        *,
        cwd: Path,
        timeout: float,
        variables: Any = None,
        limits: ResourceLimits | None = None,
    ) -> Captured:
        with self._count:
            self.calls += 1
            self.seen.append({"variables": dict(variables or {}), "limits": limits})
        time.sleep(0.3)
        if self.code:
            return Captured(self.code, "", "line 1\nservices.web: bad thing\n")
        return Captured(0, self.output, "")


def run_parallel(resolver: compose_file.Resolver, text: str, n: int = 8) -> list[Any]:
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        try:
            results[i] = resolver.resolve(text, {"A": "1"})
        except InvalidInput as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_parallel_resolutions_of_one_file_run_compose_once() -> None:
    runner = SlowRunner()
    resolver = compose_file.Resolver(runner)
    results = run_parallel(resolver, "services:\n  web:\n    image: x\n")
    assert runner.calls == 1
    assert all(r.model == {"services": {"web": {"image": "x"}}} for r in results)
    assert runner.seen[0]["limits"] == compose_file.CONFIG_LIMITS
    # A later call reads the answer; another env is another input.
    resolver.resolve("services:\n  web:\n    image: x\n", {"A": "1"})
    assert runner.calls == 1
    resolver.resolve("services:\n  web:\n    image: x\n", {"A": "2"})
    assert runner.calls == 2


def test_a_refused_file_fails_once_not_per_request() -> None:
    runner = SlowRunner(code=1)
    resolver = compose_file.Resolver(runner)
    results = run_parallel(resolver, "services:\n  web:\n    image: x\n")
    assert runner.calls == 1
    assert all(isinstance(r, InvalidInput) and "bad thing" in r.message for r in results)
    assert len({id(r) for r in results}) == len(results)  # one exception object per caller


def test_a_billion_laughs_never_reaches_compose() -> None:
    runner = SlowRunner()
    with pytest.raises(InvalidInput, match="aliases expand"):
        compose_file.Resolver(runner).resolve(laughs(), {})
    assert runner.calls == 0


class CountingRunner(SlowRunner):
    """A ``SlowRunner`` that notes how many ``config`` runs overlap at most."""

    def __init__(self) -> None:
        super().__init__()
        self.running = self.most = 0

    def capture(self, args: list[str], **kw: Any) -> Captured:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().capture(args, **kw)
        finally:
            with self._count:
                self.running -= 1


def test_costly_files_take_turns_and_a_long_wait_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Different files (no shared answer) run ``config`` at most ``CONFIG_SLOTS`` at once;
    a caller that would wait past ``CONFIG_TIMEOUT`` gets 503 ``busy``, and its file is
    not remembered as refused."""
    monkeypatch.setattr(compose_file, "CONFIG_SLOTS", 1)
    runner = CountingRunner()
    resolver = compose_file.Resolver(runner)
    texts = [f"services:\n  web{n}:\n    image: x\n" for n in range(3)]
    results: list[Any] = [None] * len(texts)

    def one(i: int) -> None:
        try:
            results[i] = resolver.resolve(texts[i], {})
        except Exception as exc:  # the test reads what each caller got
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert runner.most == 1 and runner.calls == 3
    assert not any(isinstance(r, Exception) for r in results), results

    monkeypatch.setattr(compose_file, "CONFIG_TIMEOUT", 0.05)
    blocker = threading.Thread(target=resolver.resolve, args=("services: {a: {image: y}}\n", {}))
    blocker.start()
    time.sleep(0.1)
    with pytest.raises(Busy) as busy:
        resolver.resolve("services: {b: {image: z}}\n", {})
    assert busy.value.code == "busy"
    blocker.join(10)
    resolver.resolve("services: {b: {image: z}}\n", {})  # later, it runs
    assert runner.calls == 5
