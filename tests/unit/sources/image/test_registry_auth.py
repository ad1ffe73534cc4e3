"""A registry login is bound to the registry host it was saved for, and never leaves for another."""

from __future__ import annotations

import pytest

from moorage.plugins.kind_config import stored_config
from moorage.runtime.docker.images import auth_config as _auth_config
from moorage.runtime.engine import RegistryCredentials, registry_host
from moorage.services.merge_patch import merge_patch
from moorage.sources.image.config import ImageConfig

LOGIN = {"username": "admin", "password": "s3cret-s3cret"}


@pytest.mark.parametrize(
    ("ref", "host"),
    [
        ("nginx", "docker.io"),
        ("nginx:1.25", "docker.io"),
        ("team/app:1", "docker.io"),
        ("docker.io/team/app", "docker.io"),
        ("index.docker.io/team/app", "docker.io"),
        ("registry.example.com/team/app:1", "registry.example.com"),
        ("Registry.Example.com/team/app", "registry.example.com"),
        ("127.0.0.1:5000/team/app@sha256:" + "a" * 64, "127.0.0.1:5000"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
    ],
)
def test_the_registry_host_of_a_reference(ref: str, host: str) -> None:
    assert registry_host(ref) == host


def saved(image: str, **auth: str) -> ImageConfig:
    return ImageConfig.model_validate({"image": image, "registry_auth": {**LOGIN, **auth}})


def test_a_login_is_saved_with_the_host_of_its_image() -> None:
    config = saved("127.0.0.1:5000/team/app:1")
    assert config.registry_auth is not None
    assert config.registry_auth.server == "127.0.0.1:5000"
    assert stored_config(config)["registry_auth"]["server"] == "127.0.0.1:5000"
    assert config.credentials("127.0.0.1:5000/team/app:2") is not None


def test_moving_the_image_to_another_host_drops_the_login() -> None:
    stored = stored_config(saved("127.0.0.1:5000/team/app:1"))
    # A PATCH of the image alone (a JSON merge patch keeps the stored login).
    moved = ImageConfig.model_validate(merge_patch(stored, {"image": "127.0.0.1:6000/team/app:1"}))
    assert moved.registry_auth is None
    assert "registry_auth" not in stored_config(moved)
    # Another tag on the same host keeps it.
    same = ImageConfig.model_validate(merge_patch(stored, {"image": "127.0.0.1:5000/team/app:9"}))
    assert same.registry_auth is not None


def test_a_local_image_id_keeps_the_login_but_is_never_pulled_with_it() -> None:
    stored = stored_config(saved("127.0.0.1:5000/team/app:1"))
    promoted = ImageConfig.model_validate({**stored, "image": "sha256:" + "b" * 64})
    assert promoted.registry_auth is not None
    assert promoted.credentials(promoted.image) is None


@pytest.mark.parametrize(
    ("image", "server", "kept"),
    [
        ("nginx", "https://index.docker.io/v1/", True),
        ("registry.example.com/app", "registry.example.com", True),
        ("registry.example.com/app", "https://registry.example.com/", True),
        ("registry.example.com:5000/app", "registry.example.com", False),
        ("evil.example.net/app", "registry.example.com", False),
    ],
)
def test_an_explicit_server_must_be_the_images_host(image: str, server: str, kept: bool) -> None:
    assert (saved(image, server=server).registry_auth is not None) is kept


def test_the_engine_sends_a_login_only_to_its_own_host() -> None:
    creds = RegistryCredentials("admin", "s3cret-s3cret", "127.0.0.1:5000")
    assert _auth_config("127.0.0.1:5000/team/app:1", creds) == {
        "username": "admin",
        "password": "s3cret-s3cret",
        "serveraddress": "127.0.0.1:5000",
    }
    assert _auth_config("127.0.0.1:6000/team/app:1", creds) is None
    assert _auth_config("team/app:1", creds) is None
    assert _auth_config("team/app:1", RegistryCredentials("u", "p", None)) is None
