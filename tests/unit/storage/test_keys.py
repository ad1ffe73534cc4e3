"""Object keys: what a storage target may be asked for (``storage.keys``)."""

from __future__ import annotations

import pytest

from moorage.errors import InvalidInput
from moorage.storage.keys import MAX_KEY, check_key
from moorage.storage.s3 import S3Storage

GOOD = [
    "snapshots/wl_01/sn_01.tar.zst.age",
    "instance/2026-12-01T02-00-00Z.db.age",
    "a",
    "x.-_/Y.9",
    "..a/b..",  # dots inside a name are a name
]
BAD = [
    "",
    "/absolute",
    "trailing/",
    "a//b",
    "../up",
    "a/../b",
    "a/./b",
    ".",
    "...",
    "space here",
    "new\nline",
    "nul\x00",
    "back\\slash",
    "ünïcode",
    "quote'",
    "semi;colon",
    "star*",
    "percent%2F",
    "a" * 129,
    "a/" * 300 + "a",
]


@pytest.mark.parametrize("key", GOOD)
def test_plain_relative_keys_pass(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", BAD)
def test_anything_a_path_join_or_url_could_read_otherwise_is_refused(key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_key(key)
    assert caught.value.code == "invalid_key"


def test_a_prefix_may_be_empty_or_end_in_a_slash_but_is_checked_like_a_key() -> None:
    assert check_key("", prefix=True) == ""
    assert check_key("snapshots/", prefix=True) == "snapshots/"
    assert check_key("snapshots/wl_", prefix=True) == "snapshots/wl_"
    for bad in ("/", "../", "a//", " /"):
        with pytest.raises(InvalidInput):
            check_key(bad, prefix=True)


def test_the_length_bound_is_the_whole_key() -> None:
    longest = "/".join(["a" * 127] * 4)  # 511 characters
    assert len(longest) < MAX_KEY and check_key(longest) == longest
    with pytest.raises(InvalidInput):
        check_key(longest + "/bc")


@pytest.mark.parametrize("prefix", ["../..", "/abs", "a/../b", "sp ace", "a//b"])
def test_an_s3_prefix_that_is_no_key_is_refused_naming_the_field(prefix: str) -> None:
    config = {
        "endpoint": "http://127.0.0.1:9000",
        "bucket": "backups",
        "access_key_id": "a",
        "secret_access_key": "s",
        "prefix": prefix,
    }
    with pytest.raises(InvalidInput) as refused:
        S3Storage().validate(config)
    assert refused.value.code == "invalid_config"
    assert [d["field"] for d in refused.value.details] == ["prefix"]
