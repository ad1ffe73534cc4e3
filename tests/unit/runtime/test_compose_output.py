"""What Compose prints is program output (``moorage.program_output``): it quotes the
values of the file's variables, and a viewer reads a deployment's log and error. Run
against the real Compose: a ``container_name`` from a variable, which the daemon
refuses, quoting it (attacker pass, helper 44)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from moorage import program_output
from moorage.runtime.compose import ComposeRunner, failed_run
from tests.conftest import unique

SECRET = "bad name s3cret-value"
FILE = "services:\n  a:\n    image: moorage-test/httpd:1\n    container_name: '${NAME}'\n"


def test_what_compose_prints_is_hidden_from_viewers(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(FILE)
    project = unique("out")
    logged: list[str] = []
    runner = ComposeRunner()
    try:
        code, output = runner.run(
            ["-p", project, "-f", "compose.yml", "up", "-d"],
            cwd=tmp_path,
            log=logged.append,
            timeout=120,
            variables={"NAME": SECRET},
        )
    finally:
        runner.run(["-p", project, "-f", "compose.yml", "down"], cwd=tmp_path, log=print)
        subprocess.run(["docker", "network", "rm", f"{project}_default"], capture_output=True)
    assert code != 0 and SECRET in output  # Compose did quote it
    assert logged and all(line.startswith(program_output.MARK) for line in logged)
    error = failed_run("up", code, output)
    assert error.startswith(f"compose up exited {code}; its last output:\n")
    assert "Invalid container name" in error  # the cause, not only "Encountered errors"
    for kept in ("\n".join(logged), error):
        assert SECRET not in program_output.redacted(kept)
        assert program_output.HIDDEN in program_output.redacted(kept)
    assert SECRET in program_output.revealed("\n".join(logged))


def test_a_failed_run_says_its_exit_code_its_cause_and_its_last_line() -> None:
    mark = program_output.MARK
    assert failed_run("up", 3, "") == "compose up exited 3"
    assert failed_run("up", 1, "a\nlast line\n\n") == (
        f"compose up exited 1; its last output:\n{mark}last line"
    )
    v1 = "ERROR: for a  first\nERROR: for a  the cause\nEncountered errors while bringing up"
    assert failed_run("up", 1, v1).split("\n")[1:] == [
        f"{mark}ERROR: for a  the cause",
        f"{mark}Encountered errors while bringing up",
    ]
    v2 = "Container x Creating\nError response from daemon: the cause"
    assert failed_run("up", 1, v2).split("\n")[1:] == [
        f"{mark}Error response from daemon: the cause"
    ]
