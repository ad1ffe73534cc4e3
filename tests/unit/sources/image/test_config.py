"""The image kind's config refuses what its deploy could never pass: an http health check
reaches the container through a published tcp port (``health._probe``), so a config
without one is 422 at create and update, naming the field, instead of a deploy that fails
after the whole health timeout (a newcomer's finding, issue 12)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from moorage.errors import InvalidInput
from moorage.plugins.kind_config import validate_config
from moorage.runtime.engine import Container
from moorage.sources.image import health
from moorage.sources.image.config import HealthCheck, ImageConfig, PortMapping

IMAGE = "moorage-test/httpd:1"
UDP = {"container": 53, "protocol": "udp"}

REFUSED = [
    pytest.param({"health": {"http": "/"}}, "published tcp port", id="no-ports"),
    pytest.param({"ports": [UDP], "health": {"http": "/"}}, "published tcp port", id="udp-only"),
    pytest.param(
        {"ports": [{"container": 8080}], "health": {"http": "/", "port": 9000}},
        "9000",
        id="port-not-published",
    ),
    pytest.param(
        {"ports": [{"container": 9000, "protocol": "udp"}], "health": {"http": "/", "port": 9000}},
        "9000",
        id="port-published-udp",
    ),
]
ACCEPTED = [
    pytest.param({"ports": [{"container": 8080}], "health": {"http": "/"}}, id="first-tcp"),
    pytest.param({"ports": [UDP, {"container": 8080}], "health": {"http": "/"}}, id="after-udp"),
    pytest.param(
        {"ports": [{"container": 80}, {"container": 9000}], "health": {"http": "/", "port": 9000}},
        id="named-port",
    ),
    pytest.param({"health": {"cmd": ["true"]}}, id="cmd-needs-no-port"),
    pytest.param({"health": {"timeout_seconds": 5}}, id="no-probe"),
    pytest.param({}, id="no-health"),
]


@pytest.mark.parametrize(("config", "said"), REFUSED)
def test_an_http_check_without_a_published_tcp_port_is_refused(
    config: dict[str, Any], said: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_config("image", ImageConfig, {"image": IMAGE, **config})
    assert caught.value.code == "invalid_config"
    assert caught.value.details is not None
    assert [d["field"] for d in caught.value.details] == ["health"]
    assert said in caught.value.message and "ports" in caught.value.message


class Answering:
    """An engine whose container runs, publishes every port of the config on loopback
    and passes any health-check command."""

    def __init__(self, config: ImageConfig) -> None:
        self.ports = {(p.container, p.protocol): 40000 + i for i, p in enumerate(config.ports)}

    def get(self, container_id: str) -> Container:
        return Container(container_id, "c", "running", None, {}, "sha256:x", self.ports)

    def exec(self, container_id: str, cmd: list[str]) -> tuple[int, str]:
        return 0, ""


@pytest.mark.parametrize("config", [p.values[0] for p in [*REFUSED, *ACCEPTED]])
def test_the_validator_and_the_deploys_probe_agree(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> None:
    """What the model accepts, the deploy's probe reaches; what it refuses, the probe never
    could (a container publishing every configured port, every GET answering 200)."""
    monkeypatch.setattr(health.httpx, "get", lambda url, **kw: httpx.Response(200))
    built = ImageConfig.model_construct(
        image=IMAGE,
        ports=[PortMapping(**p) for p in config.get("ports", [])],
        health=HealthCheck(**config["health"]) if "health" in config else None,
    )
    engine = Answering(built)
    probe = built.health or HealthCheck()
    ok, said, _ = health._probe(
        engine,  # type: ignore[arg-type]
        engine.get("c"),
        built,
        probe,
        False,
        "127.0.0.1",
        -probe.grace_seconds,
    )
    try:
        ImageConfig.model_validate({"image": IMAGE, **config})
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == ok, said
