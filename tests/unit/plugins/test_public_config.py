"""Secrets never leave through a config read, and reading does not re-validate."""

from __future__ import annotations

from moorage.plugins.kind_config import MASK, public_config, stored_config
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
