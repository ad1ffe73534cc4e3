"""Every built-in storage kind against a real server: the ``TargetStore`` contract.

One table of cases runs over ``local`` (a directory), ``sftp`` (an sshd started by
``scripts/sftp.sh``, by key and by password) and ``s3`` (moto's server started by
``scripts/s3.sh``, path-style and virtual-host addressing). The contract (SPEC section
11, ``plugins/spec.py``): what is put is got back byte for byte at any size; an object
appears whole or not at all (a source that fails part-way leaves the old object and no
partial one, under its key or in a listing); delete is idempotent; listings are sorted
and filtered by prefix; and each way of getting the config wrong is a ``TargetError``
with a code and a message naming what to fix, never a library's traceback.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage.errors import InvalidInput, TargetError
from moorage.plugins.registry import Registry
from moorage.plugins.spec import StorageKind, TargetStore
from moorage.storage.local import LocalStorage
from moorage.storage.s3 import S3Storage
from moorage.storage.sftp import SftpStorage
from tests.storage.conftest import SftpServer, s3_config, sftp_config

Opener = Callable[[], tuple[StorageKind, dict[str, Any]]]


@pytest.fixture(params=["local", "sftp-key", "sftp-password", "s3-path", "s3-virtual"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[StorageKind, dict[str, Any], TargetStore]]:
    case = request.param
    kind: StorageKind
    if case == "local":
        kind, config = LocalStorage(), {"path": str(tmp_path / "target")}
    elif case.startswith("sftp"):
        server: SftpServer = request.getfixturevalue("sftp_server")
        kind, config = SftpStorage(), sftp_config(server)
        if case == "sftp-password":
            config = {k: v for k, v in config.items() if k != "private_key"}
            config["password"] = server.password
    else:
        endpoint: str = request.getfixturevalue("s3_endpoint")
        kind = S3Storage()
        if case == "s3-path":
            config = s3_config(endpoint)
        else:
            port = endpoint.rsplit(":", 1)[1]
            config = {
                **s3_config(endpoint, "vhost-bucket"),
                "endpoint": f"http://s3.moorage.test:{port}",
                "addressing": "virtual",
            }
    kind.validate(config)
    store = kind.open(config)
    yield kind, config, store
    store.close()
    store.close()  # twice is harmless


def got(store: TargetStore, key: str) -> bytes:
    out = io.BytesIO()
    n = store.get(key, out)
    assert n == len(out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, (1 << 20) + 7, (17 << 20) + 3])
def test_what_is_put_is_got_back_byte_for_byte(target: Any, size: int) -> None:
    _kind, _config, store = target
    data = os.urandom(size)
    key = f"snapshots/wl_{size}/sn_{uuid.uuid4().hex}.tar.zst.age"
    assert store.put(key, io.BytesIO(data)) == size
    back = got(store, key)
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()


class Failing(io.RawIOBase):
    """Gives ``good`` bytes, then fails as a dying disk or a cut pipe would."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            raise OSError(5, "Input/output error (planted)")
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


@pytest.mark.parametrize("good", [0, 3 << 20, 20 << 20])
def test_a_source_failing_part_way_leaves_the_old_object_and_no_partial_one(
    target: Any, good: int
) -> None:
    _kind, _config, store = target
    key = "snapshots/wl_1/sn_replaced.tar.zst.age"
    store.put(key, io.BytesIO(b"the old copy"))
    with pytest.raises((OSError, TargetError)):
        store.put(key, io.BufferedReader(Failing(good)))
    assert got(store, key) == b"the old copy"
    assert [o.key for o in store.list()] == [key]
    new = "snapshots/wl_1/sn_never.tar.zst.age"
    with pytest.raises((OSError, TargetError)):
        store.put(new, io.BufferedReader(Failing(good)))
    assert [o.key for o in store.list()] == [key]
    with pytest.raises(TargetError) as caught:
        got(store, new)
    assert caught.value.code == "target_object_missing"


def test_listing_is_sorted_filtered_by_prefix_and_delete_is_idempotent(target: Any) -> None:
    _kind, _config, store = target
    keys = ["snapshots/wl_b/2.age", "snapshots/wl_a/1.age", "instance/db.age", "snapshots/wl_a/0"]
    for i, key in enumerate(keys):
        store.put(key, io.BytesIO(b"x" * i))
    listed = store.list()
    assert [o.key for o in listed] == sorted(keys)
    assert {o.key: o.size for o in listed}["snapshots/wl_b/2.age"] == 0
    assert all(o.modified.tzinfo is not None for o in listed)
    assert [o.key for o in store.list("snapshots/wl_a/")] == [
        "snapshots/wl_a/0",
        "snapshots/wl_a/1.age",
    ]
    assert store.list("nothing/") == []
    store.delete("snapshots/wl_a/0")
    store.delete("snapshots/wl_a/0")
    store.delete("never/was")
    assert "snapshots/wl_a/0" not in [o.key for o in store.list()]


def test_a_put_replaces_an_object_whole(target: Any) -> None:
    _kind, _config, store = target
    store.put("k", io.BytesIO(b"first version, longer than the second"))
    store.put("k", io.BytesIO(b"second"))
    assert got(store, "k") == b"second"


def test_keys_that_could_escape_the_target_never_reach_it(target: Any) -> None:
    _kind, _config, store = target
    for bad in ("../escape", "/etc/passwd", "a/../../b", "a\x00b"):
        with pytest.raises(InvalidInput):
            store.put(bad, io.BytesIO(b"x"))
        with pytest.raises(InvalidInput):
            store.get(bad, io.BytesIO())
        with pytest.raises(InvalidInput):
            store.delete(bad)


# --- getting the config wrong --------------------------------------------------------


def expect(code: str, kind: StorageKind, config: dict[str, Any], *words: str) -> None:
    with pytest.raises(TargetError) as caught:
        kind.open(config).close()
    assert caught.value.code == code, caught.value.message
    for word in words:
        assert word in caught.value.message, caught.value.message


def test_sftp_refusals_say_what_to_fix(sftp_server: SftpServer) -> None:
    kind = SftpStorage()
    good = sftp_config(sftp_server)
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    expect("target_auth_failed", kind, {**good, "host_key": other_key}, "host key", "pinned")
    unpinned = {k: v for k, v in good.items() if k != "host_key"}
    # Not pinned: refused, quoting the key the server shows so the admin can check it.
    expect("target_auth_failed", kind, unpinned, "host_key", sftp_server.host_key)
    del good["private_key"]
    expect("target_auth_failed", kind, {**good, "password": "wrong"}, "refused the credentials")
    expect("target_unreachable", kind, {**good, "password": "x", "port": 1}, "check host and port")


def test_sftp_configs_are_checked_before_anything_connects() -> None:
    kind = SftpStorage()
    base = {"host": "h", "username": "u", "path": "/p", "password": "x"}
    for bad in (
        {**base, "path": "relative"},
        {**base, "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n"},
        {k: v for k, v in base.items() if k != "password"},  # no credential
        {**base, "host_key": "ssh-ed25519 !!!notbase64"},
        {**base, "port": 70000},
        {**base, "colour": "red"},
    ):
        with pytest.raises(InvalidInput):
            kind.validate(bad)


def test_s3_refusals_say_what_to_fix(s3_endpoint: str) -> None:
    kind = S3Storage()
    good = s3_config(s3_endpoint)
    expect("target_unreachable", kind, {**good, "bucket": "no-such-bucket"}, "no bucket")
    expect("target_unreachable", kind, {**good, "endpoint": "http://127.0.0.1:1"}, "endpoint")
    for bad in (
        {**good, "endpoint": "ftp://x"},
        {**good, "prefix": "../up/"},
        {**good, "addressing": "sideways"},
    ):
        with pytest.raises(InvalidInput):
            kind.validate(bad)


def test_local_refuses_a_path_it_may_not_use(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    expect("target_unreachable", LocalStorage(), {"path": str(blocker / "sub")}, str(blocker))
    with pytest.raises(InvalidInput):
        LocalStorage().validate({"path": "relative/dir"})


def test_the_built_in_kinds_load_from_entry_points_like_a_plugin() -> None:
    registry = Registry.load()
    assert {"local", "sftp", "s3"} <= set(registry.storage)
    for name, kind in registry.storage.items():
        assert isinstance(kind, StorageKind), name


def test_a_link_below_a_local_root_cannot_lead_to_a_sibling_with_a_longer_name(
    tmp_path: Path,
) -> None:
    root, sibling = tmp_path / "t", tmp_path / "t-evil"
    root.mkdir()
    sibling.mkdir()
    (root / "snapshots").symlink_to(sibling)  # "/.../t-evil" starts with "/.../t"
    store = LocalStorage().open({"path": str(root)})
    with pytest.raises(TargetError) as caught:
        store.put("snapshots/wl_1/x.age", io.BytesIO(b"x"))
    assert "symbolic link" in caught.value.message
    assert list(sibling.iterdir()) == []
