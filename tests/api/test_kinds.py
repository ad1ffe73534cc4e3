"""GET /api/kinds: each kind's schema, sample and the capabilities clients branch on."""

from __future__ import annotations

from tests.conftest import Server


def test_kinds_declare_their_capabilities(server: Server) -> None:
    r = server.viewer.get("/api/kinds")
    assert r.status_code == 200, r.text
    caps = {k["kind"]: k["capabilities"] for k in r.json()["items"]}
    assert caps["image"] == ["volumes", "fixed_ports", "pull"]
    assert caps["compose"] == ["volumes"]  # Moorage volumes bound to a service (SPEC 10)
    assert caps["webhook"] == caps["schedule"] == []
    image = next(k for k in r.json()["items"] if k["kind"] == "image")
    port = image["schema"]["$defs"]["HealthCheck"]["properties"]["port"]
    assert port["x-follows"] == "ports.0.container"
