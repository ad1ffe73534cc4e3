"""The compose kind's plan, without Compose: the override file carries every env value so
that Compose reads it back exactly; one-shot services are told apart in v1's and v2's
model; a container whose env is not the workload's fails the deploy naming the key."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.plugins.spec import DeployContext, WorkloadView
from moorage.runtime.compose import ComposeRunner
from moorage.runtime.engine import ContainerSpec
from moorage.settings import Settings
from moorage.sources.compose import deploy as compose_deploy
from moorage.sources.compose.deploy import (
    ONE_SHOT_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    one_shot_services,
    override_text,
)
from tests.fakes.engine import FakeEngine

HOSTILE = {
    "TEMPLATE": "Hello ${USER_NAME}!",
    "DOLLARS": "$a $$b $ ${c:-d} $(e) end$",
    "QUOTES": '\'single\' "double" `back` "unclosed',
    "BACKSLASHES": "C:\\dir\\new \\t \\\\ \\",
    "PEM": "-----BEGIN KEY-----\nMIIB\n-----END KEY-----\n",
    "EQUALS": "=a=b==c=",
    "SPACES": "  both ends  ",
    "UNICODE": "héllo ✓ 日本語 😀 \u2028\u2029\ufeff \u0085 \ufffe \U0010ffff",
    "EMPTY": "",
    "CONTROLS": "tab\there\r\ncrlf \x1b[0m \x07 \x7f \x01",
    "NEWLINES": "\n\nmiddle\n\n",
    "YAML": "yes",
    "NULL": "null",
    "NUMBER": "0x1F",
    "COMMENT": "a # b",
    "MAPPING": "key: value",
    "ALIAS": "*x",
    "LONG": "word " * 5000,
}


def random_values(count: int) -> dict[str, str]:
    """Values drawn from every code point an env value may hold (no NUL, no surrogate)."""
    rng = random.Random(13)
    pool = [c for c in map(chr, range(1, 0x3000)) if not "\ud800" <= c <= "\udfff"]
    pool += ["$", "{", "}", "\\", '"', "'", "\n", "😀", "\U0010fffd"] * 50
    return {f"R{i}": "".join(rng.choices(pool, k=rng.randint(0, 80))) for i in range(count)}


def read_back(text: str) -> dict[str, Any]:
    """The override as Compose v1 reads it: PyYAML's safe loader, then interpolation, in
    which ``$$`` is a ``$`` and any other ``$`` names a variable (none is set here)."""
    doc = yaml.safe_load(text)

    def interpolate(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: interpolate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [interpolate(v) for v in value]
        if not isinstance(value, str):
            return value
        return string.Template(value).substitute({})  # KeyError on an unescaped $NAME

    return dict(interpolate(doc))


@pytest.mark.parametrize("values", [HOSTILE, random_values(200)], ids=["hostile", "random"])
def test_every_value_reads_back_exactly_in_every_service(values: dict[str, str]) -> None:
    # A volume's host path is a directory's name, whatever it holds: ``${X:-..}`` there
    # once made Compose bind a path outside the stage's base (the helper's reproduction).
    binds = [
        {
            "type": "bind",
            "source": f"/v/{v}/${{X:-..}}/$HOME",
            "target": f"/t/$Y{v}",
            "read_only": True,
        }
        for v in list(values.values())[:20]
        if "\0" not in v and "/" not in v
    ]
    text = override_text(
        ["web", "worker"],
        {"worker"},
        {"moorage.workload": "wl_1", "moorage.test": "a$b"},
        values,
        {"moorage.test": "a$b"},
        {"web": binds},
    )
    doc = read_back(text)
    assert doc["services"]["web"]["volumes"] == binds
    for service in ("web", "worker"):
        assert doc["services"][service]["environment"] == values
    assert doc["services"]["web"]["labels"] == {"moorage.workload": "wl_1", "moorage.test": "a$b"}
    assert doc["services"]["worker"]["labels"][ONE_SHOT_LABEL] == "true"
    assert doc["networks"]["default"]["labels"] == {"moorage.test": "a$b"}
    # No YAML alias between services, and no line folded: each value is one line.
    assert "&" not in text.split('"services"')[0] and "*id" not in text
    assert all(line.endswith(('"', ":")) for line in text.splitlines())


V1_MODEL = {
    "services": {
        "seed": {"image": "x", "restart": "no"},
        "migrate": {"image": "x"},
        "web": {
            "image": "x",
            "restart": "always",
            "depends_on": {
                "migrate": {"condition": "service_completed_successfully"},
                "db": {"condition": "service_healthy"},
                "ghost": {"condition": "service_completed_successfully"},
            },
        },
        "db": {"image": "x", "restart": "unless-stopped"},
        "plain": {"image": "x"},
        "bare_no": {"image": "x", "restart": False},  # `restart: no` unquoted
    }
}
# v2 prints every dependency in the long form, with ``required``.
V2_MODEL = {
    "services": {
        "seed": {"image": "x", "restart": "no"},
        "migrate": {"image": "x"},
        "web": {
            "image": "x",
            "depends_on": {
                "migrate": {"condition": "service_completed_successfully", "required": True},
                "db": {"condition": "service_started", "required": True},
            },
        },
        "db": {"image": "x"},
        "short": {"image": "x", "depends_on": ["db"]},
    }
}


def test_one_shot_services_in_v1_and_v2_models() -> None:
    assert one_shot_services(V1_MODEL) == {"seed", "migrate", "bare_no"}
    assert one_shot_services(V2_MODEL) == {"seed", "migrate"}
    assert one_shot_services({"services": []}) == set()


def context(tmp_path: Path, engine: FakeEngine, env: dict[str, str]) -> DeployContext:
    view = WorkloadView(
        id="wl_1", name="app", kind="compose", project="shop", stage="prod", config={}, env=env
    )
    settings = Settings.from_env({"MOORAGE_DATA_DIR": str(tmp_path)})
    return DeployContext(engine=engine, compose=ComposeRunner(), settings=settings, workload=view)


def compose_container(engine: FakeEngine, service: str, env: dict[str, str]) -> None:
    engine.add_image("x")
    engine.networks.add("n")
    labels = {PROJECT_LABEL: "moorage_shop_prod_app", SERVICE_LABEL: service}
    engine.create(ContainerSpec(name=service, image="x", labels=labels, network="n", env=env))


def test_a_value_that_did_not_arrive_exactly_fails_naming_the_key(tmp_path: Path) -> None:
    engine = FakeEngine()
    wanted = {"A": "1", "PEM": "line 1\nline 2\n", "Z": "z"}
    compose_container(engine, "web", dict(wanted))
    compose_container(engine, "worker", {"A": "1", "PEM": "line 1", "Z": "z"})
    ctx = context(tmp_path, engine, wanted)
    assert compose_deploy.env_missed(ctx) == "env PEM did not reach service worker as stored"

    engine = FakeEngine()
    compose_container(engine, "web", {"A": "1", "Z": "z"})
    assert compose_deploy.env_missed(context(tmp_path, engine, wanted)) == (
        "env PEM did not reach service web as stored"
    )

    engine = FakeEngine()
    compose_container(engine, "web", {**wanted, "IMAGE_DEFAULT": "kept"})
    assert compose_deploy.env_missed(context(tmp_path, engine, wanted)) is None
