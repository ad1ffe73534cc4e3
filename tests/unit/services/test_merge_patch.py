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
