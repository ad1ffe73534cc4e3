"""The CLI edits a workload without JSON or curl: update, env, volumes, show, logs --follow,
names for ids, whole ids in 80-column tables, errors that name the flag to use."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import fails, ok
from tests.conftest import Server, free_port, unique


def new_app(
    server: Server, project: str, name: str, stage: str = "production", **config: Any
) -> str:
    body = {"image": "moorage-test/httpd:1", **config}
    out = ok(
        server.cli(
            "apps", "create", name, "--project", project, "--stage", stage,
            "--config", json.dumps(body), "--json", token=server.operator.token,
        )
    )  # fmt: skip
    return str(json.loads(out)["id"])


@pytest.fixture
def cli_project(server: Server) -> str:
    slug = unique("cle")
    ok(server.cli("projects", "create", slug, token=server.admin.token))
    return slug


def test_update_by_name_with_set_and_file(server: Server, cli_project: str, tmp_path: Path) -> None:
    token = server.operator.token
    name = unique("web")
    probe = {"http": "/", "timeout_seconds": 5}  # a probe needs a published tcp port
    wid = new_app(server, cli_project, name, ports=[{"container": 80}], health=probe)
    out = ok(
        server.cli(
            "apps", "update", name, "--set", "image=moorage-test/httpd:2",
            "--set", "health.timeout_seconds=null", "--set", 'ports=[{"container": 8080}]',
            "--keep-last", "3", token=token,
        )
    )  # fmt: skip
    assert f"updated image workload {name}" in out
    got = server.operator.get(f"/api/workloads/{wid}").json()
    assert got["config"]["image"] == "moorage-test/httpd:2"
    assert got["config"]["health"]["http"] == "/"
    assert got["config"]["health"]["timeout_seconds"] == 60  # null removed it: the default
    assert got["config"]["ports"][0]["container"] == 8080
    assert got["keep_last"] == 3

    # --file is the whole new config: what it leaves out is removed.
    config = tmp_path / "web.yaml"
    config.write_text("image: moorage-test/httpd:1\ncommand: [httpd, -f, -p, '8080']\n")
    ok(server.cli("apps", "update", f"{cli_project}/production/{name}", "--file", str(config),
                  token=token))  # fmt: skip
    got = server.operator.get(f"/api/workloads/{wid}").json()
    assert got["config"]["image"] == "moorage-test/httpd:1"
    assert got["config"]["command"] == ["httpd", "-f", "-p", "8080"]
    assert not got["config"].get("ports") and not got["config"].get("health"), got["config"]

    before = server.operator.get(f"/api/workloads/{wid}").json()
    fails(server.cli("apps", "update", name, "--set", "nokey", token=token), "KEY=VALUE")
    fails(server.cli("apps", "update", name, "--set", "image=", token=token), "422")
    fails(server.cli("apps", "update", name, token=token), "nothing to change")
    assert server.operator.get(f"/api/workloads/{wid}").json()["config"] == before["config"]


def test_set_reads_values_as_the_kind_types_them_and_reaches_into_lists(
    server: Server, cli_project: str
) -> None:
    """`--set` through the real server: a text key keeps digits as text, a number key
    takes a number, an index edits one item of a list (the rest of the list kept)."""
    token = server.operator.token
    name = unique("lst")
    wid = new_app(server, cli_project, name, command=["httpd", "-f", "-p", "8080"])
    ok(server.cli("apps", "update", name, "--set", "image=12345", "--set", "stop_timeout=7",
                  "--set", "command[3]=9000", "--set", "command[4]=-v", token=token))  # fmt: skip
    got = server.operator.get(f"/api/workloads/{wid}").json()["config"]
    assert got["image"] == "12345" and got["stop_timeout"] == 7
    assert got["command"] == ["httpd", "-f", "-p", "9000", "-v"]
    ok(server.cli("apps", "update", name, "--set", "command[4]=null", token=token))
    got = server.operator.get(f"/api/workloads/{wid}").json()["config"]
    assert got["command"] == ["httpd", "-f", "-p", "9000"]
    before = got
    fails(server.cli("apps", "update", name, "--set", "command[9]=x", token=token), "4 items")
    fails(server.cli("apps", "update", name, "--set", "image[0]=x", token=token), "not a list")
    assert server.operator.get(f"/api/workloads/{wid}").json()["config"] == before


def test_create_with_image_and_port_flags(server: Server, cli_project: str) -> None:
    """No JSON for the common case: --image and --port, as `docker run -p` reads it."""
    token = server.operator.token
    name = unique("prt")
    out = ok(server.cli("apps", "create", name, "--project", cli_project, "--stage",
                        "production", "--image", "moorage-test/httpd:1", "--port", "8080",
                        "--port", "5353/udp", "--json", token=token))  # fmt: skip
    got = server.operator.get(f"/api/workloads/{json.loads(out)['id']}").json()
    assert got["config"]["ports"] == [
        {"container": 8080, "protocol": "tcp"},
        {"container": 5353, "protocol": "udp"},
    ]
    fails(server.cli("apps", "create", unique("prt"), "--project", cli_project, "--stage",
                     "production", "--image", "x:1", "--port", "http", token=token),
          "--port takes PORT")  # fmt: skip
    fails(server.cli("apps", "create", unique("prt"), "--project", cli_project, "--stage",
                     "production", "--config", '{"image": "x:1"}', "--port", "80",
                     token=token), "--port goes with --image")  # fmt: skip


def test_a_name_in_two_stages_must_be_qualified(server: Server, cli_project: str) -> None:
    token = server.operator.token
    name = unique("twin")
    new_app(server, cli_project, name, stage="staging")
    prod = new_app(server, cli_project, name)
    fails(server.cli("apps", "show", name, token=token), "2 workloads are named")
    shown = ok(server.cli("apps", "show", f"{cli_project}/production/{name}", "--json",
                          token=token))  # fmt: skip
    assert json.loads(shown)["id"] == prod
    fails(server.cli("apps", "show", unique("nobody"), token=token), "no workload")


def test_env_set_unset_list_and_dotenv(server: Server, cli_project: str, tmp_path: Path) -> None:
    token = server.operator.token
    name = unique("envy")
    wid = new_app(server, cli_project, name)
    ok(server.cli("apps", "env", "set", name, "LOG_LEVEL=info", "URL=a=b", token=token))
    ok(server.cli("apps", "env", "set", name, "DB_PASSWORD=s3cret-pw", "--secret", token=token))
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\nexport GREETING="hello world"\nEMPTY=\nMULTI="a\nb"\n')
    ok(server.cli("apps", "env", "set", name, "--from-file", str(dotenv), token=token))
    env = server.operator.get(f"/api/workloads/{wid}/env").json()
    assert env == {
        "DB_PASSWORD": {"value": None, "secret": True},
        "EMPTY": {"value": "", "secret": False},
        "GREETING": {"value": "hello world", "secret": False},
        "LOG_LEVEL": {"value": "info", "secret": False},
        "MULTI": {"value": "a\nb", "secret": False},
        "URL": {"value": "a=b", "secret": False},
    }
    # Setting another key kept the secret's stored value.
    reveal = server.operator.get(f"/api/workloads/{wid}/env/DB_PASSWORD").json()
    assert reveal["value"] == "s3cret-pw"
    for shown in (
        ok(server.cli("apps", "env", "list", name, token=token)),
        ok(server.cli("apps", "show", name, token=token)),
    ):
        assert "hello world" in shown and "s3cret-pw" not in shown and "********" in shown
    ok(server.cli("apps", "env", "unset", name, "LOG_LEVEL", "URL", token=token))
    keys = set(server.operator.get(f"/api/workloads/{wid}/env").json())
    assert keys == {"DB_PASSWORD", "EMPTY", "GREETING", "MULTI"}
    fails(server.cli("apps", "env", "unset", name, "NOPE", token=token), "no variable NOPE")
    fails(server.cli("apps", "env", "set", name, "1BAD=x", token=token), "422")
    fails(server.cli("apps", "env", "set", name, "novalue", token=token), "KEY=VALUE")
    assert set(server.operator.get(f"/api/workloads/{wid}/env").json()) == keys
    # A viewer's show still works; env and volumes are operator-only.
    viewer = ok(server.cli("apps", "show", name, token=server.viewer.token))
    assert "(operators only)" in viewer and "GREETING" not in viewer


def test_env_files_are_taken_as_written_and_secrets_stay_secret(
    server: Server, cli_project: str, tmp_path: Path
) -> None:
    """Found by the attacker pass: ``${MOORAGE_TOKEN}`` in a .env was filled in from the
    caller's shell; setting a secret again without --secret made it plain; a non-UTF-8
    file was a traceback."""
    token = server.operator.token
    name = unique("envz")
    wid = new_app(server, cli_project, name)
    dotenv = tmp_path / "interp.env"
    dotenv.write_text("TOK=${MOORAGE_TOKEN}\nPASS=ab${UNDEFINED_X}cd\n")
    ok(server.cli("apps", "env", "set", name, "--from-file", str(dotenv), token=token))
    env = server.operator.get(f"/api/workloads/{wid}/env").json()
    assert env["TOK"]["value"] == "${MOORAGE_TOKEN}"
    assert env["PASS"]["value"] == "ab${UNDEFINED_X}cd"
    assert str(token) not in str(env)
    ok(server.cli("apps", "env", "set", name, "PW=first", "--secret", token=token))
    ok(server.cli("apps", "env", "set", name, "PW=rotated", token=token))
    assert server.operator.get(f"/api/workloads/{wid}/env").json()["PW"] == {
        "value": None,
        "secret": True,
    }
    ok(server.cli("apps", "env", "set", name, "PW=public-now", "--no-secret", token=token))
    assert server.operator.get(f"/api/workloads/{wid}/env").json()["PW"]["secret"] is False
    binary = tmp_path / "bin.env"
    binary.write_bytes(b"\xff\xfe=bad\n")
    fails(server.cli("apps", "env", "set", name, "--from-file", str(binary), token=token), "UTF-8")
    fails(
        server.cli("apps", "env", "set", name, "--from-file", str(tmp_path), token=token),
        "directory",
    )


def test_volumes_set_and_list(server: Server, cli_project: str, tmp_path: Path) -> None:
    token = server.operator.token
    name = unique("vol")
    wid = new_app(server, cli_project, name)
    out = ok(server.cli("apps", "volumes", "set", name, "data:stage:vol/data:/var/lib/web",
                        "uploads:project:uploads:/srv/uploads:ro", token=token))  # fmt: skip
    assert "data, uploads" in out
    got = server.operator.get(f"/api/workloads/{wid}/volumes").json()["items"]
    assert [(v["name"], v["scope"], v["source"], v["target"], v["read_only"]) for v in got] == [
        ("data", "stage", "vol/data", "/var/lib/web", False),
        ("uploads", "project", "uploads", "/srv/uploads", True),
    ]
    listed = json.loads(ok(server.cli("apps", "volumes", "list", name, "--json", token=token)))
    assert [v["host_path"] for v in listed] == [v["host_path"] for v in got]
    assert "/srv/uploads" in ok(server.cli("apps", "volumes", "list", name, token=token))
    spec = tmp_path / "volumes.json"
    spec.write_text(json.dumps([{"name": "db", "scope": "stage", "source": "db", "target": "/db"}]))
    ok(server.cli("apps", "volumes", "set", name, "--file", str(spec), token=token))
    got = server.operator.get(f"/api/workloads/{wid}/volumes").json()["items"]
    assert [v["name"] for v in got] == ["db"]
    fails(server.cli("apps", "volumes", "set", name, "data:stage", token=token), "NAME:SCOPE")
    fails(server.cli("apps", "volumes", "set", name, token=token), "--clear")
    fails(server.cli("apps", "volumes", "set", name, "x:stage:../up:/x", token=token), "422")
    assert [
        v["name"] for v in server.operator.get(f"/api/workloads/{wid}/volumes").json()["items"]
    ] == ["db"]
    ok(server.cli("apps", "volumes", "set", name, "--clear", token=token))
    assert server.operator.get(f"/api/workloads/{wid}/volumes").json()["items"] == []


def test_logs_follow_ends_when_the_deployment_ends(server: Server, cli_project: str) -> None:
    token = server.operator.token
    name = unique("slow")
    port = free_port()
    fails(server.cli("apps", "logs", name, "--follow", token=token), "no workload")
    wid = new_app(
        server, cli_project, name,
        command=["sh", "-c", "sleep 3; exec httpd -f -p 8080 -h /www"],
        ports=[{"container": 8080, "host": port}], health={"http": "/"},
    )  # fmt: skip
    fails(server.cli("apps", "logs", name, "--follow", token=token), "no deployment yet")
    queued = ok(server.cli("apps", "deploy", name, "--no-wait", token=token))
    dep_id = queued.split()[2]
    started = time.monotonic()
    out = ok(server.cli("apps", "logs", name, "--follow", token=token))
    assert time.monotonic() - started < 50
    assert "health: healthy" in out
    assert out.strip().splitlines()[-1] == f"deployment {dep_id} succeeded"
    dep = server.operator.get(f"/api/workloads/{wid}/deployments/{dep_id}").json()
    assert dep["status"] == "succeeded" and dep["log"].strip().splitlines()[0] in out
    # show names the last deployment.
    shown = ok(server.cli("apps", "show", name, token=token))
    assert f"last deployment: {dep_id} succeeded" in shown
    # Following a deployment that fails ends with it too, and exits 1.
    ok(server.cli("apps", "update", name, "--set", "health.http=/missing",
                  "--set", "health.timeout_seconds=2", token=token))  # fmt: skip
    bad_id = ok(server.cli("apps", "deploy", name, "--no-wait", token=token)).split()[2]
    fails(server.cli("apps", "logs", name, "--follow", token=token), f"deployment {bad_id} failed")
    bad = server.operator.get(f"/api/workloads/{wid}/deployments/{bad_id}").json()
    assert bad["status"] == "failed"


def test_tables_keep_whole_ids_and_sizes_are_human(
    server: Server, cli_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = server.admin.token
    name = unique("snapper")
    wid = new_app(server, cli_project, name)
    ok(server.cli("apps", "volumes", "set", name, f"data:stage:{name}:/data", token=admin))
    folder = server.data_dir / "volumes" / cli_project / "production" / name
    folder.mkdir(parents=True)
    blob = os.urandom(3_000_000)  # incompressible: the archive is about as big
    (folder / "blob").write_bytes(blob)
    out = ok(server.cli("snapshots", "capture", name, "--mode", "none", token=admin))
    assert "ready:" in out and "MiB" in out
    (snap,) = server.admin.get(f"/api/workloads/{wid}/snapshots").json()["items"]
    monkeypatch.setitem(server.env, "COLUMNS", "80")
    listed = ok(server.cli("snapshots", "list", name, token=admin))
    assert snap["id"] in listed and "2.9 MiB" in listed, listed
    assert max(len(line) for line in listed.splitlines()) <= 80
    apps = ok(server.cli("apps", "list", "--project", cli_project, token=admin))
    assert wid in apps and max(len(line) for line in apps.splitlines()) <= 80
    # Too narrow for whole ids and readable names: each row prints as a record, every
    # column still there.
    monkeypatch.setitem(server.env, "COLUMNS", "40")
    apps = ok(server.cli("apps", "list", "--project", cli_project, token=admin))
    assert f"id       {wid}" in apps and f"name     {name}" in apps, apps
    assert "status" in apps and "…" not in apps

    # A wrong --confirm names the flag and changes nothing; 'latest' names the snapshot.
    result = server.cli("snapshots", "restore", name, "latest", "--confirm", "web", token=admin)
    fails(result, f"pass --confirm {name}")
    assert "header" not in result.stderr.lower()
    assert server.admin.get(f"/api/workloads/{wid}/restores").json()["items"] == []
    out = ok(server.cli("snapshots", "restore", name, "latest", "--confirm", name, token=admin))
    assert f"restoring snapshot {snap['id']}" in out
    assert (folder / "blob").read_bytes() == blob

    # Deleting it needs the CLI flag, which the error names; nothing is deleted without it.
    fails(server.cli("apps", "delete", name, "--yes", token=admin), "pass --purge-snapshots")
    assert server.admin.get(f"/api/workloads/{wid}").status_code == 200
    ok(server.cli("apps", "delete", name, "--yes", "--purge-snapshots", token=admin))
    assert server.admin.get(f"/api/workloads/{wid}").status_code == 404


def test_triggers_by_name(server: Server, cli_project: str) -> None:
    token = server.operator.token
    app_name, hook = unique("hooked"), unique("hook")
    wid = new_app(server, cli_project, app_name)
    ok(server.cli("triggers", "create", "webhook", hook, token=token))
    ok(server.cli("triggers", "bind", hook, app_name, token=token))
    bound = server.operator.get(f"/api/workloads/{wid}/triggers").json()["items"]
    assert [t["name"] for t in bound] == [hook]
    ok(server.cli("triggers", "unbind", f"webhook/{hook}", app_name, token=token))
    assert server.operator.get(f"/api/workloads/{wid}/triggers").json()["items"] == []
    ok(server.cli("triggers", "delete", hook, token=token))
    fails(server.cli("triggers", "delete", hook, token=token), "no trigger")


def test_token_create_refuses_a_data_dir_without_a_database(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "not-the-data-dir"
    monkeypatch.setitem(server.env, "MOORAGE_DATA_DIR", str(empty))
    monkeypatch.delitem(server.env, "MOORAGE_DATABASE_URL", raising=False)
    fails(server.cli("token", "create", "--username", "admin"), str(empty / "moorage.db"))
    assert not (empty / "moorage.db").exists()
