import pytest

from moorage.errors import InvalidInput
from moorage.services.merge_patch import MASK, merge_patch


def test_rfc7386_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": "foo"}, "bar") == "bar"


def test_an_echoed_mask_keeps_the_stored_secret() -> None:
    stored = {"registry_auth": {"username": "u", "password": "hunter22"}}
    patched = merge_patch(stored, {"registry_auth": {"username": "v", "password": MASK}})
    assert patched == {"registry_auth": {"username": "v", "password": "hunter22"}}


def test_a_mask_where_nothing_is_stored_is_refused_not_stored() -> None:
    """Found by the unit tests of triggers: ``{"secret": MASK}`` on a webhook without a
    secret stored the mask text itself as the secret."""
    for target, patch, where in (
        ({"provider": "github"}, {"secret": MASK}, "secret"),
        ({"auth": {}}, {"auth": {"password": MASK}}, "auth.password"),
        ({}, {"a": {"b": {"c": MASK}}}, "a.b.c"),
    ):
        with pytest.raises(InvalidInput) as caught:
            merge_patch(target, patch)
        assert caught.value.code == "invalid_config"
        assert where in caught.value.message
    assert merge_patch({"secret": "s"}, {"secret": MASK, "x": 1}) == {"secret": "s", "x": 1}
