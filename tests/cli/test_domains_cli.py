"""``moorage apps domains``: set, list (table and JSON), clear, and one-line errors for a
bad spec and a refused domain (SPEC section 12), through a real server."""

from __future__ import annotations

import json

from tests.cli.test_cli import fails, ok
from tests.conftest import Server, create_workload, unique


def test_domains_set_list_clear(server: Server) -> None:
    token = server.operator.token
    project = unique("dom")
    assert server.admin.post("/api/projects", json={"slug": project}).status_code == 201
    config = {"image": "moorage-test/httpd:1", "ports": [{"container": 8080}]}
    w = create_workload(server, project, config=config)
    ref = f"{project}/production/{w['name']}"
    host = f"{project}.example.internal"
    out = ok(
        server.cli(
            "apps",
            "domains",
            "set",
            ref,
            f"{host}:8080:tls=internal",
            f"plain.{host}:8080:tls=off",
            token=token,
        )
    )
    assert host in out
    listed = json.loads(ok(server.cli("apps", "domains", "list", ref, "--json", token=token)))
    assert [(d["host"], d["tls"], d["port"]) for d in listed] == [
        (host, "internal", 8080),
        (f"plain.{host}", "off", 8080),
    ]
    table = ok(server.cli("apps", "domains", "list", ref, token=token))
    assert "internal" in table and "off" in table  # hosts fold in a narrow terminal
    fails(server.cli("apps", "domains", "set", ref, "no-port", token=token), "a domain is")
    fails(
        server.cli("apps", "domains", "set", ref, f"{host}:8080:tls=maybe", token=token),
        "unknown option",
    )
    fails(server.cli("apps", "domains", "set", ref, f"{host}:9999", token=token), "port 9999")
    fails(server.cli("apps", "domains", "set", ref, f"*.{host}:8080", token=token), "DNS provider")
    # refused: the list is as it was
    listed = json.loads(ok(server.cli("apps", "domains", "list", ref, "--json", token=token)))
    assert len(listed) == 2
    ok(server.cli("apps", "domains", "clear", ref, token=token))
    assert json.loads(ok(server.cli("apps", "domains", "list", ref, "--json", token=token))) == []
    assert "No domains yet" in ok(server.cli("apps", "domains", "list", ref, token=token))
