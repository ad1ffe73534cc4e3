"""The drill sandbox's Compose model (``sources/compose/sandbox.py``): nothing of it can
publish a port, take a live container's name, join a live network or mount live state;
a file that would share live state is refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moorage.errors import DeployFailed
from moorage.plugins.spec import Sandbox, VolumeMount
from moorage.sources.compose.sandbox import sandbox_model

SANDBOX = Sandbox(
    id="dr_1",
    network="moorage_drill_dr_1",
    labels={"moorage.drill": "dr_1"},
    volumes=(
        VolumeMount(
            name="data",
            scope="stage",
            source="x/data",
            target="/data",
            read_only=False,
            host_path=Path("/var/drills/dr_1/0"),
            base=Path("/var/drills/dr_1"),
            service="web",
        ),
    ),
)


def model(**web: Any) -> dict[str, Any]:
    return {
        "version": "3.9",
        "services": {
            "web": {
                "image": "moorage-test/httpd:1",
                "ports": ["127.0.0.1:18080:8080/tcp"],
                "container_name": "live-web",
                "networks": {"front": None},
                "labels": ["app=$shop"],
                "environment": {"A": "1"},
                "restart": "always",
                **web,
            },
            "job": {"image": "moorage-test/httpd:1", "restart": "no"},
        },
        "networks": {"front": {}},
        "volumes": {"cache": {}, "shared": {"external": True, "name": "live-shared"}},
    }


def test_the_sandbox_model_keeps_to_itself() -> None:
    out = sandbox_model(model(), SANDBOX, {"SECRET": "p$ss"}, v2=False)
    web = out["services"]["web"]
    assert "ports" not in web and "container_name" not in web and "networks" not in web
    assert web["restart"] == "no" and out["services"]["job"]["restart"] == "no"
    assert web["labels"]["moorage.drill"] == "dr_1" and web["labels"]["app"] == "$$shop"
    assert web["environment"] == {"A": "1", "SECRET": "p$$ss"}
    assert web["volumes"] == [
        {"type": "bind", "source": "/var/drills/dr_1/0", "target": "/data", "read_only": False}
    ]
    assert out["services"]["job"]["labels"]["moorage.one-shot"] == "true"
    assert out["networks"] == {"default": {"name": "moorage_drill_dr_1", "external": True}}
    assert out["volumes"]["cache"] == {"labels": {"moorage.drill": "dr_1"}}
    assert "version" not in out


def test_a_named_volume_never_keeps_its_name_or_driver() -> None:
    """A fixed ``name`` would be the live stack's volume; driver options a host bind."""
    m = model(volumes=["data:/d"])
    m["volumes"]["data"] = {
        "name": "live-data",
        "driver": "local",
        "driver_opts": {"type": "none", "o": "bind", "device": "/srv/live"},
    }
    out = sandbox_model(m, SANDBOX, {}, v2=True)
    assert out["volumes"]["data"] == {"labels": {"moorage.drill": "dr_1"}}


@pytest.mark.parametrize(
    ("web", "said"),
    [
        ({"volumes": ["/srv/live:/live:rw"]}, "binds the host path /srv/live"),
        ({"volumes": ["./rel:/rel"]}, "binds the host path ./rel"),
        ({"volumes": [{"type": "bind", "source": "/etc", "target": "/e"}]}, "host path /etc"),
        ({"volumes": ["shared:/s"]}, "external volume shared"),
        ({"volumes": [{"type": "volume", "source": "shared", "target": "/s"}]}, "external"),
        ({"network_mode": "host"}, "network_mode host"),
        ({"network_mode": "container:live-db"}, "network_mode container:live-db"),
        ({"pid": "host"}, "pid host"),
        ({"ipc": "container:live-db"}, "ipc container:live-db"),
        ({"volumes_from": ["container:live-db"]}, "volumes_from container:live-db"),
    ],
)
def test_a_file_that_shares_live_state_is_refused(web: dict[str, Any], said: str) -> None:
    with pytest.raises(DeployFailed) as refused:
        sandbox_model(model(**web), SANDBOX, {}, v2=True)
    assert said in refused.value.message


def test_named_and_anonymous_volumes_are_the_sandbox_own() -> None:
    out = sandbox_model(model(volumes=["cache:/c", "/anon"]), SANDBOX, {}, v2=True)
    assert out["services"]["web"]["volumes"][:2] == ["cache:/c", "/anon"]
