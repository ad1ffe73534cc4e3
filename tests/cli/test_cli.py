"""The ``moorage`` CLI against the real server: offline management and the HTTP groups."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server, free_port, unique


def ok(result: object) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def fails(result: object, needle: str) -> None:
    r = result
    assert r.returncode == 1, (r.stdout, r.stderr)  # type: ignore[attr-defined]
    lines = r.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr  # type: ignore[attr-defined]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in r.stderr  # type: ignore[attr-defined]


def test_offline_admin_and_token_create(server: Server) -> None:
    name = unique("cli-user")
    out = ok(
        server.cli(
            "admin",
            "create",
            "--username",
            name,
            "--role",
            "operator",
            "--password-stdin",
            stdin="a-long-password\n",
        )
    )
    assert f"created operator {name}" in out
    token = ok(server.cli("token", "create", "--username", name)).splitlines()[-1]
    assert token.startswith("mrg_")
    me = server.anonymous.get("/api/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"]["role"] == "operator"
    # The password from stdin logs in.
    r = server.anonymous.post(
        "/api/session", json={"username": name, "password": "a-long-password"}
    )
    assert r.status_code == 201
    fails(
        server.cli(
            "admin", "create", "--username", name, "--password-stdin", stdin="a-long-password\n"
        ),
        "already exists",
    )
    fails(
        server.cli(
            "admin",
            "create",
            "--username",
            unique("u"),
            "--role",
            "root",
            "--password-stdin",
            stdin="a-long-password\n",
        ),
        "role must be one of",
    )
    fails(server.cli("token", "create", "--username", "nobody-here"), "no user")


def test_apps_and_triggers_round_trip(server: Server) -> None:
    token = server.operator.token
    admin = server.admin.token
    project = unique("clip")
    ok(server.cli("projects", "create", project, "--stage", "dev", "--stage", "prod", token=admin))
    out = ok(
        server.cli(
            "apps",
            "create",
            "web",
            "--project",
            project,
            "--stage",
            "prod",
            "--image",
            "moorage-test/httpd:1",
            "--json",
            token=token,
        )
    )
    web = json.loads(out)
    assert web["ref_id"] == web["id"] and web["config"]["image"] == "moorage-test/httpd:1"
    config = json.dumps({"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]})
    ok(
        server.cli(
            "apps",
            "create",
            "api",
            "--project",
            project,
            "--stage",
            "prod",
            "--config",
            config,
            token=token,
        )
    )
    listed = json.loads(ok(server.cli("apps", "list", "--project", project, "--json", token=token)))
    assert sorted(w["name"] for w in listed) == ["api", "web"]
    shown = json.loads(ok(server.cli("apps", "show", f"{project}/prod/web", "--json", token=token)))
    assert shown["id"] == web["id"]

    trigger = json.loads(
        ok(
            server.cli(
                "triggers",
                "create",
                "webhook",
                unique("hook"),
                "--config",
                '{"provider": "github"}',
                "--json",
                token=token,
            )
        )
    )
    assert trigger["url"].endswith(f"/hooks/{trigger['token']}")
    ok(server.cli("triggers", "bind", trigger["id"], web["id"], token=token))
    ok(server.cli("triggers", "bind", trigger["id"], f"{project}/prod/api", token=token))
    listed_triggers = json.loads(
        ok(server.cli("triggers", "list", "--kind", "webhook", "--json", token=token))
    )
    mine = next(t for t in listed_triggers if t["id"] == trigger["id"])
    api_id = next(w["id"] for w in listed if w["name"] == "api")
    assert sorted(mine["workloads"]) == sorted([web["id"], api_id])
    fails(server.cli("triggers", "bind", trigger["id"], web["id"], token=token), "already bound")
    ok(server.cli("triggers", "unbind", trigger["id"], web["id"], token=token))
    ok(server.cli("triggers", "delete", trigger["id"], token=token))
    assert server.admin.get(f"/api/triggers/{trigger['id']}").status_code == 404

    # Deleting needs admin: the operator gets a one-line 403.
    fails(server.cli("apps", "delete", web["id"], "--yes", token=token), "admin role")
    ok(server.cli("apps", "delete", web["id"], "--yes", token=admin))
    assert server.admin.get(f"/api/workloads/{web['id']}").status_code == 404


def test_errors_are_one_line(server: Server) -> None:
    token = server.operator.token
    fails(
        server.cli(
            "apps",
            "create",
            "x",
            "--project",
            "no-such-project",
            "--stage",
            "prod",
            "--image",
            "a:b",
            token=token,
        ),
        "does not exist",
    )
    fails(
        server.cli(
            "apps",
            "create",
            "x",
            "--project",
            "p",
            "--stage",
            "s",
            "--config",
            "{not json",
            token=token,
        ),
        "not valid JSON",
    )
    fails(server.cli("apps", "show", "wl_nothere", token=token), "no workload")
    fails(server.cli("apps", "list", token="mrg_wrong"), "invalid API token")
    fails(server.cli("apps", "list"), "MOORAGE_TOKEN is not set")
    env_url = server.url
    try:
        server.url = f"http://127.0.0.1:{free_port()}"
        fails(server.cli("apps", "list", token=token), "cannot reach Moorage")
    finally:
        server.url = env_url


def test_deploy_follows_the_log_and_logs_prints_output(server: Server) -> None:
    token = server.operator.token
    project = unique("clid")
    ok(server.cli("projects", "create", project, token=server.admin.token))
    port = free_port()
    config = json.dumps(
        {
            "image": "moorage-test/httpd:1",
            "command": ["sh", "-c", "echo started-ok; exec httpd -f -p 8080 -h /www"],
            "ports": [{"container": 8080, "host": port}],
            "health": {"http": "/"},
        }
    )
    ok(
        server.cli(
            "apps",
            "create",
            "web",
            "--project",
            project,
            "--stage",
            "production",
            "--config",
            config,
            token=token,
        )
    )
    out = ok(server.cli("apps", "deploy", f"{project}/production/web", token=token))
    assert "health: healthy" in out and "deployed web" in out
    logs = ok(server.cli("apps", "logs", f"{project}/production/web", "--tail", "5", token=token))
    assert "started-ok" in logs
    bad = json.dumps({"health": {"http": "/nope", "timeout_seconds": 2}})
    wid = json.loads(
        ok(server.cli("apps", "show", f"{project}/production/web", "--json", token=token))
    )["id"]
    assert (
        server.operator.patch(f"/api/workloads/{wid}", json={"config": json.loads(bad)}).status_code
        == 200
    )
    result = server.cli("apps", "deploy", wid, token=token)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: deploy failed:")
    assert "404" in result.stderr


def test_trigger_deliveries_and_token(server: Server) -> None:
    token = server.operator.token
    trigger = json.loads(
        ok(server.cli("triggers", "create", "webhook", unique("dl"), "--json", token=token))
    )
    import httpx

    r = httpx.post(
        trigger["url"],
        content=b'{"ref": "refs/heads/main"}',
        headers={"X-Moorage-Delivery": "cli-1"},
    )
    assert r.status_code == 202, r.text
    listed = json.loads(
        ok(server.cli("triggers", "deliveries", trigger["id"], "--json", token=token))
    )
    assert [(d["delivery_id"], d["outcome"], d["signature"]) for d in listed] == [
        ("cli-1", "queued", "unsigned")
    ]
    assert "queued" in ok(server.cli("triggers", "deliveries", trigger["id"], token=token))
    out = ok(server.cli("triggers", "token", trigger["id"], token=token))
    new_url = out.split("new url: ")[1].strip()
    assert new_url != trigger["url"]
    assert httpx.post(trigger["url"], content=b"{}").status_code == 404
    assert httpx.post(new_url, content=b"{}").status_code == 202


def test_snapshots_capture_list_download_import_delete(server: Server, tmp_path: Path) -> None:
    admin = server.admin.token
    project = unique("clis")
    ok(server.cli("projects", "create", project, token=admin))
    ok(
        server.cli(
            "apps",
            "create",
            "db",
            "--project",
            project,
            "--stage",
            "production",
            "--image",
            "moorage-test/httpd:1",
            token=admin,
        )
    )
    ref = f"{project}/production/db"
    wid = json.loads(ok(server.cli("apps", "show", ref, "--json", token=admin)))["id"]
    r = server.admin.put(
        f"/api/workloads/{wid}/volumes",
        json=[{"name": "data", "scope": "stage", "source": "db", "target": "/data"}],
    )
    assert r.status_code == 200
    folder = server.data_dir / "volumes" / project / "production" / "db"
    folder.mkdir(parents=True)
    (folder / "f.txt").write_text("x")
    out = ok(server.cli("snapshots", "capture", ref, "--mode", "none", token=admin))
    assert "ready" in out and "?" not in out  # sizes in words, never rich's "0/? bytes"
    (snap,) = json.loads(ok(server.cli("snapshots", "list", ref, "--json", token=admin)))
    archive = tmp_path / "snap.tar.zst"
    out = ok(server.cli("snapshots", "download", ref, snap["id"], "-o", str(archive), token=admin))
    assert snap["sha256"] in out and archive.stat().st_size == snap["size"]
    out = ok(server.cli("snapshots", "import", ref, str(archive), token=admin))
    assert "imported snapshot" in out
    assert len(json.loads(ok(server.cli("snapshots", "list", ref, "--json", token=admin)))) == 2
    bad = tmp_path / "bad.tar.zst"
    bad.write_bytes(b"garbage")
    fails(server.cli("snapshots", "import", ref, str(bad), token=admin), "422")
    # No question about a snapshot that is not there: the answer says so first.
    missing = server.cli("snapshots", "delete", ref, "sn_missing", token=admin, stdin="y\n")
    assert missing.returncode == 1 and "Delete snapshot" not in missing.stdout
    assert "has no snapshot 'sn_missing'" in missing.stderr
    ok(server.cli("snapshots", "delete", ref, snap["id"], "--yes", token=admin))
    assert len(json.loads(ok(server.cli("snapshots", "list", ref, "--json", token=admin)))) == 1
