from tests.conftest import Server


def test_healthz_and_openapi(server: Server) -> None:
    assert server.anonymous.get("/api/healthz").json()["status"] == "ok"
    doc = server.anonymous.get("/api/openapi.json").json()
    assert "/api/workloads" in doc["paths"]
