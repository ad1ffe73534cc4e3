"""Every module of moorage imports on its own, as the first moorage module of a process.

An import cycle only shows when the import starts at the right module (issue 13: the
image kind's health check imported its config, which imported the deploy side, which
imported the health check half-made), so each module gets a process of its own. The
processes are forked from one interpreter that has imported the third-party libraries
moorage uses and no moorage module at all (a cycle is always among moorage's own
modules), so each costs its own imports only, not a whole interpreter's start.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import moorage
from tests.conftest import start_server, stop_server

MODULES = sorted(m.name for m in pkgutil.walk_packages(moorage.__path__, "moorage."))

# Runs in a fresh interpreter: imports the libraries named in argv[1] (JSON: [module,
# [names]] pairs, each name fetched too, as `from module import name` would), then forks
# one child per module named in argv[2] (JSON), two at a time, that imports it first
# and exits; prints
# {module: last line of the error} for the children that failed.
ZYGOTE = """
import importlib, json, os, sys, traceback
for library, names in json.loads(sys.argv[1]):
    try:
        loaded = importlib.import_module(library)
        for name in names:
            if not hasattr(loaded, name):
                importlib.import_module(library + "." + name)
    except Exception:
        pass  # an optional library: the module that needs it reports it, if any
assert not [m for m in sys.modules if m.split(".")[0] == "moorage"], "moorage preloaded"
failed, running, waiting = {}, {}, json.loads(sys.argv[2])[::-1]
while waiting or running:
    while waiting and len(running) < 2:  # two at once: the test machine is shared
        module = waiting.pop()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                __import__(module)
                code = 0
            except BaseException:
                os.write(write, traceback.format_exc().strip().splitlines()[-1].encode())
                code = 1
            os._exit(code)
        os.close(write)
        running[pid] = (module, read)
    pid, status = os.wait()
    module, read = running.pop(pid)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode(errors="replace")
    if status != 0:
        failed[module] = said or f"exit status {status}"
print(json.dumps(failed))
"""


def third_party() -> list[tuple[str, list[str]]]:
    """What moorage's modules import that is not moorage's own: (module, names) pairs."""
    found: dict[str, set[str]] = {}
    for path in Path(moorage.__path__[0]).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.setdefault(alias.name, set())
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.setdefault(node.module, set()).update(a.name for a in node.names)
    return sorted(
        (module, sorted(names))
        for module, names in found.items()
        if module.split(".")[0] not in {"moorage", "__future__"}
    )


def test_the_walk_reaches_into_every_package() -> None:
    assert {
        "moorage.api.app",
        "moorage.deployer.queue",
        "moorage.server",
        "moorage.plugins.spec",
        "moorage.snapshots.restore.run",
        "moorage.sources.compose.deploy",
        "moorage.sources.image.health",
    } <= set(MODULES)


def test_every_module_imports_first_in_a_process_of_its_own() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ZYGOTE, json.dumps(third_party()), json.dumps(MODULES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}


def test_a_cycle_is_reported_by_the_module_it_starts_at(tmp_path: Path) -> None:
    """The check can fail: two modules that import each other's names, started at the
    one whose name the other needs before it is defined."""
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclic.a import A\nB = 2\n")
    done = subprocess.run(
        [sys.executable, "-c", ZYGOTE, "[]", json.dumps(["cyclic.a"])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert "ImportError" in json.loads(done.stdout)["cyclic.a"]


# Libraries a server needs only when it uses one feature, each of several MiB of Python
# objects that would otherwise stay in every server for good (SPEC section 8: server
# idle RSS; ``python -m bench api_list`` prints it).
ON_DEMAND = {
    "paramiko": "an sftp storage target is checked or opened (storage/sftp_session.py)",
    "cryptography": "a certificate is read (proxy/certs.py, dns/keeper.py) or made",
    "boto3": "an s3 storage target is opened (storage/s3_store.py)",
    "botocore": "an s3 storage target is opened (storage/s3_store.py)",
    "acme": "a wildcard domain asks for a certificate (dns/dns01.py)",
    "josepy": "a wildcard domain asks for a certificate (dns/dns01.py)",
    "alembic": "the schema is migrated, in a process of its own (store/db.migrate_apart)",
    "mako": "alembic's templates: never in the server (store/db.migrate_apart)",
    "pygments": "never: httpx's command-line client is kept out (moorage/__init__.py)",
    "rich": "a command of the CLI prints; never in the server (cli/main.py)",
}
NEVER_SERVED = {"typer", "rich", "pygments", "alembic", "mako"}
"""Libraries of the command line and of migrations, none of them in ``moorage serve``'s
process (``cli/main.py`` starts it without the typer app; SPEC section 8: idle RSS).
click stays: ``uvicorn.run`` lives in uvicorn's command-line module."""

STARTS = """
import json, os, sys, tempfile
os.environ.update(MOORAGE_PROXY="none", MOORAGE_DATA_DIR=tempfile.mkdtemp() + "/var")
from moorage.api.app import create_app
from moorage.plugins.registry import Registry
from moorage.server import serve_parts
from moorage.settings import Settings
registry = Registry.load()
for kind in ("local", "sftp", "s3"):
    registry.storage_kind(kind)
create_app(serve_parts(Settings.from_env())[0])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_a_starting_server_leaves_the_on_demand_libraries_unloaded() -> None:
    """``moorage serve``'s start (settings, every plugin, the app) imports none of
    ``ON_DEMAND``: the plugin modules import them when the feature is used."""
    done = subprocess.run(
        [sys.executable, "-c", STARTS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "docker" in loaded  # the engine seam was built (runtime/docker keeps ssh out)
    assert {m: why for m, why in ON_DEMAND.items() if m in loaded} == {}


def test_an_engine_over_ssh_keeps_the_sdks_ssh_transport() -> None:
    """``DOCKER_HOST=ssh://...`` is Docker's documented way to reach a remote engine;
    with it the SDK's SSH transport (paramiko) loads as it always did, and without it
    the transport is left out (``runtime/docker/__init__.py``)."""
    env = dict(os.environ)
    probe = (
        "import moorage.runtime.docker, docker.transport as t; print(hasattr(t, 'SSHHTTPAdapter'))"
    )
    for docker_host, expected in (("ssh://deploy@engine.example", "True"), ("", "False")):
        env["DOCKER_HOST"] = docker_host
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.stdout.strip() == expected, (docker_host, done.stderr[-1000:])


def test_moorage_serve_loads_no_command_line_or_migration_library(tmp_path: Path) -> None:
    """The real entry point on a fresh data directory (so the schema is migrated):
    Python's own import log (``PYTHONPROFILEIMPORTTIME``) names none of
    ``NEVER_SERVED``."""
    proc, _url, _env = start_server(tmp_path / "var", {"PYTHONPROFILEIMPORTTIME": "1"})
    stop_server(proc)
    log = next(tmp_path.glob("server-*.log")).read_text()
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in log.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "uvicorn" in imported and "sqlalchemy" in imported  # the log is read
    assert sorted(imported & NEVER_SERVED) == []
