"""Capture hooks through a real server and the real engine (issue 16, SPEC section 10): a
``before`` hook dumps the stack's PostgreSQL into its volume, and the dump restores into a
fresh PostgreSQL with the same rows; a failing ``before`` fails the capture while ``after``
still runs; every refusal leaves the hooks as they were. And the holes an attacker pass
found: hooks on a workload with host powers are an admin's (an operator's hook ran as root
next to an admin-granted Docker socket), a hook's output is read bounded, and the
snapshot's log (a viewer's) never holds a hook's command line (it may hold a secret), nor,
for a viewer, what the hook printed."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.program_output import HIDDEN
from tests.conftest import RUN_ID, TEST_LABEL, Server, assert_error, create_workload, unique
from tests.integration.helpers import deploy
from tests.integration.stacks import PG_IMAGE, PSQL, Stack, make_stack, stack_text

DATA = "/var/lib/postgresql/data"
ROWS = "SELECT md5(string_agg(id || ':' || coalesce(note, ''), ',' ORDER BY id)) FROM ticks"


@pytest.fixture
def quiet_stack(server: Server, project: str) -> Iterator[Stack]:
    """The stack without its writer: the rows at the dump are known exactly."""
    made = make_stack(server, project, writer=False)
    yield made
    made.delete()


def _hooks(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    r = stack.api.put(f"/api/workloads/{stack.id}/snapshot-hooks", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _extract(stack: Stack, snap: dict[str, Any], into: Path) -> dict[str, Path]:
    """The snapshot's archive unpacked with plain zstd and tar; volume name -> its tree."""
    archive = stack.server.data_dir / "snapshots" / stack.id / f"{snap['id']}.tar.zst"
    subprocess.run(f"zstd -dc '{archive}' | tar -x -C '{into}'", shell=True, check=True)
    return {v["name"]: into / "volumes" / str(v["index"]) for v in snap["manifest"]["volumes"]}


def test_a_pg_dump_before_hook_restores_into_a_fresh_postgresql(quiet_stack: Stack) -> None:
    stack = quiet_stack
    stack.sql("INSERT INTO ticks (note) SELECT 'row ' || g FROM generate_series(1, 500) g")
    expected = stack.sql(ROWS)
    dump = ["sh", "-c", f"pg_dump -h /run/postgresql -U postgres -f {DATA}/dump.sql postgres"]
    _hooks(stack, {"before": {"service": "db", "command": dump}, "timeout_s": 120})

    snap = stack.capture("none")  # the dump is the consistent copy; the stack keeps running
    assert "before hook in service db: started" in snap["log"]
    assert "before hook exited 0" in snap["log"]
    with tempfile.TemporaryDirectory() as tmp:
        trees = _extract(stack, snap, Path(tmp))
        dumped = trees["pg"] / "dump.sql"
        assert dumped.stat().st_size > 0
        # A fresh PostgreSQL of the same image takes the dump and holds the same rows.
        name = unique("fresh-pg")
        subprocess.run(
            ["docker", "run", "-d", "--name", name, "--label", f"{TEST_LABEL}={RUN_ID}", PG_IMAGE],
            check=True,
            capture_output=True,
        )
        try:
            subprocess.run(["docker", "cp", str(dumped), f"{name}:/tmp/dump.sql"], check=True)
            deadline = time.monotonic() + 60
            while (
                subprocess.run(
                    ["docker", "exec", name, *PSQL, "-c", "SELECT 1"], capture_output=True
                ).returncode
                != 0
            ):
                assert time.monotonic() < deadline, "the fresh PostgreSQL did not start"
                time.sleep(0.5)
            subprocess.run(
                ["docker", "exec", name, *PSQL, "-q", "-f", "/tmp/dump.sql"],
                check=True,
                capture_output=True,
            )
            got = subprocess.run(
                ["docker", "exec", name, *PSQL, "-c", ROWS], capture_output=True, text=True
            ).stdout.strip()
            assert got == expected
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_a_failing_before_fails_the_capture_and_after_still_runs(quiet_stack: Stack) -> None:
    stack = quiet_stack
    ids = {c: stack.container(c) for c in ("web", "db")}
    marker = stack.www / "after-ran"
    _hooks(
        stack,
        {
            "before": {"service": "db", "command": ["sh", "-c", "echo dump broke >&2; exit 3"]},
            "after": {"service": "web", "command": ["sh", "-c", "echo after > /www/after-ran"]},
        },
    )
    snap = stack.capture("stop", expect="failed")
    assert "before hook exited 3" in snap["error"] and "dump broke" in snap["error"]
    assert "after hook exited 0" in snap["log"]
    assert marker.read_text() == "after\n"  # the after hook ran, in the web service
    # Nothing was stopped (the before hook failed first), and no archive is left.
    assert {c: stack.container(c) for c in ("web", "db")} == ids
    assert not (stack.server.data_dir / "snapshots" / stack.id / f"{snap['id']}.tar.zst").exists()

    # A hook that outlasts its timeout fails the capture the same way.
    marker.unlink()
    _hooks(
        stack,
        {
            "before": {"service": "db", "command": ["sleep", "30"]},
            "after": {"service": "web", "command": ["sh", "-c", "echo after > /www/after-ran"]},
            "timeout_s": 1,
        },
    )
    slow = stack.capture("pause", expect="failed")
    assert "timed out after 1 s" in slow["error"]
    assert marker.exists()
    # A failing after hook leaves the snapshot ready, with a warning.
    _hooks(stack, {"after": {"service": "web", "command": ["false"]}})
    warned = stack.capture("none")
    assert any("after hook exited 1" in w for w in warned["warnings"]), warned


def test_bad_hooks_are_refused_and_change_nothing(server: Server, quiet_stack: Stack) -> None:
    stack = quiet_stack
    url = f"/api/workloads/{stack.id}/snapshot-hooks"
    good = {"before": {"service": "db", "command": ["true"]}, "timeout_s": 30}
    saved = _hooks(stack, good)
    assert saved == {
        "before": {"service": "db", "command": ["true"]},
        "after": None,
        "timeout_s": 30,
    }
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"before": {"service": "db", "command": []}}, 422, "invalid_hook"),
        ({"before": {"service": "db", "command": [""]}}, 422, "invalid_hook"),
        ({"before": {"service": "db", "command": ["a\x00b"]}}, 422, "invalid_text"),
        ({"before": {"service": "db", "command": "pg_dump"}}, 422, "invalid_request"),
        ({"before": {"service": "db", "command": ["true"]}, "timeout_s": 0}, 422, "invalid_hook"),
        (
            {"before": {"service": "db", "command": ["true"]}, "timeout_s": 3601},
            422,
            "invalid_hook",
        ),
        ({"before": {"command": ["true"]}}, 422, "unknown_service"),
        ({"after": {"service": "nope", "command": ["true"]}}, 422, "unknown_service"),
        ({"before": {"service": "db", "command": ["true"]}, "extra": 1}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        assert_error(stack.api.put(url, json=body), status, code)
        assert stack.api.get(url).json() == saved, body
    assert_error(server.viewer.put(url, json=good), 403)
    assert_error(server.viewer.get(url), 403)
    assert_error(
        server.operator.put(f"/api/workloads/{unique('nope')}/snapshot-hooks", json=good), 404
    )
    audit = server.admin.get("/api/audit", params={"target_id": stack.id}).json()["items"]
    assert sum(a["action"] == "workload.snapshot_hooks" for a in audit) == 1

    # An image workload's hook names no service; {} removes the hooks.
    image = create_workload(server, stack.workload["project"])
    iurl = f"/api/workloads/{image['id']}/snapshot-hooks"
    assert_error(server.operator.put(iurl, json=good), 422, "invalid_hook")
    assert server.operator.put(iurl, json={"before": {"command": ["true"]}}).status_code == 200
    cleared = server.operator.put(iurl, json={}).json()
    assert cleared == {"before": None, "after": None, "timeout_s": 300}


SOCKET = "/var/run/docker.sock"


def test_hooks_on_a_workload_with_host_powers_are_an_admins(
    server: Server, quiet_stack: Stack
) -> None:
    stack = quiet_stack
    url = f"/api/workloads/{stack.id}/snapshot-hooks"
    # An operator's hooks on a workload without host powers stay allowed. The command
    # holds a secret; the after hook prints far more than is kept (50 MB).
    flood = "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo tail-marker"
    theirs = {
        "before": {"service": "db", "command": ["env", "PGPASSWORD=hunter2-Secret", "true"]},
        "after": {"service": "web", "command": ["sh", "-c", flood]},
    }
    _hooks(stack, theirs)
    snap = stack.capture("none")
    seen = server.viewer.get(f"/api/workloads/{stack.id}/snapshots/{snap['id']}")
    assert seen.status_code == 200, seen.text
    log = seen.json()["log"]
    assert "before hook in service db: started" in log and "before hook exited 0" in log
    assert "hunter2" not in log and "PGPASSWORD" not in log and "head -c" not in log
    # What the hook printed is an operator's to read (moorage/program_output.py).
    assert "after hook exited 0" in log and f"  {HIDDEN}" in log and "tail-marker" not in log
    assert len(log) < 1024, len(log)
    # The 50 MB were read as they came; only their last 64 KiB are kept, and said so.
    log = server.operator.get(f"/api/workloads/{stack.id}/snapshots/{snap['id']}").json()["log"]
    assert "after hook exited 0" in log and "  tail-marker" in log
    assert "earlier bytes of output left out" in log
    assert 64 * 1024 <= len(log) < 80 * 1024, len(log)

    # An admin grants the Docker socket to the web service (and redeploys it).
    text = stack_text(stack.port, writer=False)
    text = text.replace("  db:\n", f"    volumes:\n      - {SOCKET}:{SOCKET}\n  db:\n", 1)
    r = server.admin.patch(f"/api/workloads/{stack.id}", json={"config": {"compose": text}})
    assert r.status_code == 200, r.text
    assert deploy(server.admin, stack.id, timeout=240)["status"] == "succeeded"

    # The operator's hooks were not part of that grant: they no longer run, and every
    # capture says why until an admin saves them again.
    refused = stack.capture("none", expect="failed")
    assert "granted host powers" in refused["error"], refused
    assert "hook in service" not in (refused["log"] or "")  # neither hook ran

    # Setting, changing or clearing them is now an admin's.
    mine = {"after": {"service": "web", "command": ["test", "-S", SOCKET]}}
    for body in (mine, theirs, {}):
        denied = assert_error(server.operator.put(url, json=body), 403, "needs_admin")
        assert "capture hooks" in denied["message"]
    assert server.operator.get(url).json()["after"]["command"] == ["sh", "-c", flood]

    # An admin's hooks run: the web container holds the socket the grant was for.
    assert server.admin.put(url, json=mine).status_code == 200
    ran = stack.capture("none")
    assert "after hook in service web: started" in ran["log"]
    assert "after hook exited 0" in ran["log"], ran["log"]
    audit = server.admin.get("/api/audit", params={"target_id": stack.id}).json()["items"]
    assert sum(a["action"] == "workload.snapshot_hooks" for a in audit) == 2

    # An operator's clone would hand the socket to a new workload: refused before
    # anything is unpacked.
    clone_url = f"/api/workloads/{stack.id}/snapshots/{ran['id']}/clone"
    denied = assert_error(server.operator.post(clone_url, json={"name": "sock-copy"}), 403)
    assert denied["code"] == "needs_admin" and SOCKET in denied["message"]
    base = server.data_dir / "volumes"
    assert not list(base.rglob(".moorage-clone-*")) and not list(base.rglob("sock-copy"))
