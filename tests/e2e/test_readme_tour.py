"""The README's tour runs top to bottom against a fresh server, as a newcomer would run it.

The commands are the fenced ``sh`` blocks that follow a ``<!-- tour -->`` line in
README.md, joined in order into one bash script (``set -euo pipefail``) that runs in a
fresh directory holding ``.venv``, ``scripts`` and ``tests`` (links to this checkout) and
the server's data directory ``var``, so the tour's relative paths mean what they say. The
first command that exits non-zero fails the test, with the README line it came from.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, start_server, stop_server

MARKER = "<!-- tour -->"
FENCE = re.compile(r"^```(\w*)\s*$")


def tour_blocks(readme: str) -> list[tuple[int, list[str]]]:
    """Each marked block: the README line number of its first command, and its lines."""
    lines = readme.splitlines()
    blocks: list[tuple[int, list[str]]] = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert fence and fence.group(1) == "sh", f"README.md:{i + 1}: {MARKER} must precede ```sh"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        blocks.append((i + 3, lines[i + 2 : end]))
    return blocks


def tour_script(blocks: list[tuple[int, list[str]]]) -> tuple[str, list[int]]:
    """One bash script of every block, and the README line of each script line."""
    head = [
        "set -euo pipefail",
        "trap 'echo \"TOUR FAILED at script line $LINENO: $BASH_COMMAND\" >&2' ERR",
    ]
    script, where = list(head), [0] * len(head)
    for first, block in blocks:
        script += block
        where += range(first, first + len(block))
    return "\n".join(script) + "\n", where


def test_the_tour_blocks_are_found() -> None:
    blocks = tour_blocks((REPO / "README.md").read_text())
    commands = "\n".join(line for _, block in blocks for line in block)
    # The steps that used to break the tour are in it: the restore uses the captured $SNAP.
    assert len(blocks) > 20
    assert "snapshots restore shop/production/web $SNAP --confirm web" in commands
    assert "snapshots delete shop/production/web $SNAP" not in commands


def test_a_failing_command_names_its_readme_line() -> None:
    script, where = tour_script([(10, ["X=1", "true"]), (40, ["echo $X", "false", "echo never"])])
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "never" not in result.stdout
    failed = re.search(r"TOUR FAILED at script line (\d+): false", result.stderr)
    assert failed, result.stderr
    assert where[int(failed.group(1)) - 1] == 41


@pytest.mark.timeout(900)
def test_readme_tour_runs_top_to_bottom(tmp_path: Path) -> None:
    blocks = tour_blocks((REPO / "README.md").read_text())
    script, where = tour_script(blocks)
    for name in (".venv", "scripts", "tests"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "tour.sh").write_text(script)
    proc, url, _ = start_server(tmp_path / "var", port=free_port())
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
        env.update(MOORAGE_URL=url, COLUMNS="80")
        result = subprocess.run(
            ["bash", "tour.sh"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
            stdin=subprocess.DEVNULL,
        )
    finally:
        stop_server(proc)
    if result.returncode != 0:
        failed = re.search(r"TOUR FAILED at script line (\d+): (.*)", result.stderr)
        line = where[int(failed.group(1)) - 1] if failed else "?"
        command = failed.group(2) if failed else "?"
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        pytest.fail(f"README.md:{line}: `{command}` exited {result.returncode}\n{tail}")
