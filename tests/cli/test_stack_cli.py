"""The CLI of issue 16 against a real server: a compose app's volumes name their service
(and the file's own named volumes are said to be outside snapshots), capture hooks, and
``apps rollback`` with and without ``--data``."""

from __future__ import annotations

from tests.cli.test_cli import fails, ok
from tests.conftest import Server, create_workload, unique
from tests.integration.helpers import deploy

COMPOSE = (
    "services:\n"
    "  web:\n"
    "    image: moorage-test/httpd:1\n"
    "    volumes:\n"
    "      - cache:/cache\n"
    "volumes:\n"
    "  cache: {}\n"
)


def test_volumes_and_hooks_of_a_compose_app(server: Server, project: str) -> None:
    wl = create_workload(server, project, kind="compose", config={"compose": COMPOSE})
    ref, token = wl["id"], server.operator.token
    src = unique("d")
    fails(
        server.cli("apps", "volumes", "set", ref, f"data:stage:{src}:/data", token=token),
        "name the Compose service",
    )
    fails(
        server.cli(
            "apps", "volumes", "set", ref, f"data:stage:{src}:/data:service=db", token=token
        ),
        "no service 'db'",
    )
    ok(
        server.cli(
            "apps", "volumes", "set", ref, f"data:stage:{src}:/data:ro:service=web", token=token
        )
    )
    shown = ok(server.cli("apps", "volumes", "list", ref, token=token))
    assert "web" in shown and "/data" in shown
    assert "not covered by snapshots: Compose volume cache (web)" in shown

    out = ok(
        server.cli(
            "apps",
            "hooks",
            "set",
            ref,
            "--before",
            "sh -c 'echo dumping > /data/x'",
            "--before-service",
            "web",
            "--after",
            "true",
            "--after-service",
            "web",
            "--timeout",
            "60",
            token=token,
        )
    )
    assert "before (service web): sh -c 'echo dumping > /data/x'" in out
    hooks = server.operator.get(f"/api/workloads/{ref}/snapshot-hooks").json()
    assert hooks["before"] == {"command": ["sh", "-c", "echo dumping > /data/x"], "service": "web"}
    assert hooks["timeout_s"] == 60
    fails(
        server.cli("apps", "hooks", "set", ref, "--before", "true", token=token), "names no service"
    )
    fails(server.cli("apps", "hooks", "set", ref, token=token), "give --before")
    assert "after (service web): true" in ok(server.cli("apps", "hooks", "show", ref, token=token))
    ok(server.cli("apps", "hooks", "clear", ref, token=token))
    assert server.operator.get(f"/api/workloads/{ref}/snapshot-hooks").json()["before"] is None


def test_rollback(server: Server, project: str) -> None:
    name = unique("rb")
    wl = create_workload(server, project, name=name)
    wid = wl["id"]
    first = deploy(server.operator, wid)
    assert first["status"] == "succeeded"
    server.operator.patch(
        f"/api/workloads/{wid}", json={"config": {"image": "moorage-test/httpd:2"}}
    )
    assert deploy(server.operator, wid)["status"] == "succeeded"
    out = ok(server.cli("apps", "rollback", wid, first["id"], token=server.operator.token))
    assert f"rolling back to {first['id']}: deployment dp_" in out
    # The first deployment's image, named and pinned by its id (a local image has no digest).
    image = server.operator.get(f"/api/workloads/{wid}").json()["config"]["image"]
    assert image == f"moorage-test/httpd:1@{first['artifact']['image_id']}", image
    fails(
        server.cli(
            "apps",
            "rollback",
            wid,
            first["id"],
            "--data",
            "--confirm",
            name,
            token=server.operator.token,
        ),
        "only an admin",
    )
    fails(
        server.cli(
            "apps",
            "rollback",
            wid,
            first["id"],
            "--data",
            "--confirm",
            name,
            token=server.admin.token,
        ),
        "checkpoint",
    )
    fails(
        server.cli(
            "apps",
            "rollback",
            wid,
            first["id"],
            "--data",
            "--confirm",
            "other",
            token=server.admin.token,
        ),
        "--confirm must be",
    )


def test_deleting_a_compose_app_keeps_its_named_volumes_unless_told(
    server: Server, project: str
) -> None:
    """Newcomer pass: ``apps delete`` removed the file's named volume and its data without
    a word. It is refused, naming the volume and the flag, and nothing goes; with
    ``--purge-volumes`` the volume goes with the app."""
    wl = create_workload(server, project, kind="compose", config={"compose": COMPOSE})
    ref, admin = wl["id"], server.admin.token
    assert deploy(server.operator, ref)["status"] == "succeeded"
    refused = server.cli("apps", "delete", ref, "--yes", token=admin)
    fails(refused, "pass --purge-volumes")
    assert "_cache" in refused.stderr and "has_volumes" in refused.stderr
    assert server.admin.get(f"/api/workloads/{ref}").status_code == 200
    ok(server.cli("apps", "delete", ref, "--yes", "--purge-volumes", token=admin))
    assert server.admin.get(f"/api/workloads/{ref}").status_code == 404
