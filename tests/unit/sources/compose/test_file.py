"""A Compose file's cost is bounded before it is parsed, and one input is resolved once."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from moorage.errors import InvalidInput
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
    assert compose_file.compose_variables(env) == {"APP": "1"}


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
