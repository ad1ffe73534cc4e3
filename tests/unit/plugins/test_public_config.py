"""Secrets never leave through a config read, and reading does not re-validate."""

from __future__ import annotations

from typing import Any

import pytest

from moorage.plugins.kind_config import MASK, kept_but_moved, public_config, stored_config
from moorage.sources.image.config import ImageConfig
from moorage.triggers.webhook import WebhookConfig


def test_nested_secret_fields_are_masked() -> None:
    stored = stored_config(
        ImageConfig.model_validate(
            {
                "image": "a/b:1",
                "registry_auth": {"username": "u", "password": "hunter2hunter2"},
            }
        )
    )
    assert stored["registry_auth"]["password"] == "hunter2hunter2"
    shown = public_config(ImageConfig, stored)
    # The login is bound to the image's registry host (Docker Hub here) when saved.
    assert shown["registry_auth"] == {"username": "u", "password": MASK, "server": "docker.io"}
    assert "hunter2" not in repr(shown)
    assert stored["registry_auth"]["password"] == "hunter2hunter2"


def test_top_level_secret_is_masked_and_absent_stays_absent() -> None:
    assert public_config(WebhookConfig, {"provider": "github", "secret": "s3cr3t-value"}) == {
        "provider": "github",
        "secret": MASK,
    }
    assert public_config(WebhookConfig, {"provider": "github"}) == {"provider": "github"}


LOGIN = {"username": "u", "password": "p4ss", "server": "reg.example:5000"}
BEFORE = {"image": "reg.example:5000/a:1", "registry_auth": LOGIN}
PASSWORD = "registry_auth.password"


@pytest.mark.parametrize(
    ("patch", "after", "kept"),
    [
        # Where the login goes changes, the password is left out or sent back masked.
        ({"registry_auth": {"server": "evil:1"}}, {"server": "evil:1"}, ["registry_auth.password"]),
        (
            {"registry_auth": {"server": "e:1", "password": MASK}},
            {"server": "e:1"},
            ["registry_auth.password"],
        ),
        ({"registry_auth": {"username": "v"}}, {"username": "v"}, ["registry_auth.password"]),
        # Sent again, or nothing about the login changed, or the login is gone.
        (
            {"registry_auth": {"server": "e:1", "password": "n3w"}},
            {"server": "e:1", "password": "n3w"},
            [],
        ),
        ({"image": "reg.example:5000/a:2"}, {}, []),
        ({"registry_auth": None}, None, []),
    ],
)
def test_a_kept_secret_never_follows_a_change_of_where_it_goes(
    patch: dict[str, Any], after: dict[str, Any] | None, kept: list[str]
) -> None:
    merged = {**BEFORE, **({"registry_auth": {**LOGIN, **after}} if after is not None else {})}
    if after is None:
        merged.pop("registry_auth")
    assert kept_but_moved(ImageConfig, BEFORE, patch, merged) == kept


def test_a_top_level_secret_is_held_to_the_same_rule() -> None:
    before = {"provider": "github", "secret": "s3cr3t-value"}
    assert kept_but_moved(
        WebhookConfig, before, {"provider": "gitlab"}, {**before, "provider": "gitlab"}
    ) == ["secret"]
    assert (
        kept_but_moved(
            WebhookConfig, before, {"secret": "other-value"}, {**before, "secret": "other-value"}
        )
        == []
    )
