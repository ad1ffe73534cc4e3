"""``/api/storage-targets`` (SPEC section 11) on a real server, against real targets.

A target is made by connecting to it: its key goes onto the target wrapped with the
passphrase, and a second target at the same place must bring the same passphrase and
then reads with the same key (how a fresh machine gets its copies back). Credentials
are masked on read, kept in the database only sealed to the instance key, and never
appear in an answer or the audit log. ``/test`` proves write, read back and delete,
and a failure is a result that names what to fix, kept on the target.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import Server, assert_error, unique
from tests.storage.conftest import SftpServer, s3_config, sftp_config

PASSPHRASE = "a long test passphrase"


def make(server: Server, kind: str, config: dict[str, Any], **over: Any) -> dict[str, Any]:
    body = {"name": unique("st"), "kind": kind, "config": config, "passphrase": PASSPHRASE}
    r = server.admin.post("/api/storage-targets", json={**body, **over})
    assert r.status_code == 201, r.text
    return dict(r.json())


def key_file(server: SftpServer, config: dict[str, Any]) -> Path:
    return Path(config["path"]) / "moorage" / "target-key.age"


def test_an_sftp_target_is_made_tested_and_shown_masked(
    server: Server, sftp_server: SftpServer
) -> None:
    config = sftp_config(sftp_server)
    made = make(server, "sftp", config)
    assert made["config"]["private_key"] == "**********"
    assert made["config"]["host"] == sftp_server.host
    assert made["recipient"].startswith("age1")
    wrapped = key_file(sftp_server, config).read_bytes()
    assert wrapped.startswith(b"age-encryption.org/v1") and b"AGE-SECRET-KEY" not in wrapped

    r = server.admin.post(f"/api/storage-targets/{made['id']}/test")
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True, r.json()
    assert [s["step"] for s in r.json()["steps"]] == ["connect", "key", "write", "read", "delete"]
    # The probe is gone; only the key object is left.
    left = sorted(p.name for p in Path(config["path"]).rglob("*") if p.is_file())
    assert left == ["target-key.age"]
    shown = server.admin.get(f"/api/storage-targets/{made['id']}").json()
    assert shown["last_test_at"] is not None and shown["last_test_error"] is None


def test_a_target_someone_used_before_is_adopted_with_its_passphrase_only(
    server: Server, sftp_server: SftpServer
) -> None:
    config = sftp_config(sftp_server)
    first = make(server, "sftp", config)
    body = {"name": unique("st"), "kind": "sftp", "config": config}
    r = server.admin.post(
        "/api/storage-targets", json={**body, "passphrase": "not the same passphrase"}
    )
    assert_error(r, 422, "wrong_passphrase")
    again = make(server, "sftp", config)
    assert again["recipient"] == first["recipient"]


def test_credentials_are_sealed_at_rest_and_never_answered(
    server: Server, sftp_server: SftpServer
) -> None:
    config = {**sftp_config(sftp_server), "password": sftp_server.password}
    del config["private_key"]
    made = make(server, "sftp", config)
    assert made["config"]["password"] == "**********"
    everything = json.dumps(
        [
            server.admin.get("/api/storage-targets").json(),
            server.admin.get(f"/api/storage-targets/{made['id']}").json(),
            server.admin.get("/api/audit", params={"limit": 500}).json(),
        ]
    )
    assert sftp_server.password not in everything
    with sqlite3.connect(server.data_dir / "moorage.db") as db:
        dumped = "\n".join(db.iterdump())
    assert sftp_server.password not in dumped
    assert "AGE-SECRET-KEY" not in dumped
    key = (server.data_dir / "instance.key").stat()
    assert key.st_mode & 0o077 == 0


def test_a_masked_credential_sent_back_keeps_its_value_and_a_wrong_one_fails_the_test(
    server: Server, sftp_server: SftpServer
) -> None:
    config = {**sftp_config(sftp_server), "password": sftp_server.password}
    del config["private_key"]
    made = make(server, "sftp", config)
    url = f"/api/storage-targets/{made['id']}"
    shown = server.admin.get(url).json()["config"]
    r = server.admin.patch(url, json={"config": shown})  # the masked form, sent back
    assert r.status_code == 200, r.text
    assert server.admin.post(f"{url}/test").json()["ok"] is True
    assert server.admin.patch(url, json={"config": {"password": "wrong"}}).status_code == 200
    failed = server.admin.post(f"{url}/test").json()
    assert failed["ok"] is False
    assert failed["error"]["code"] == "target_auth_failed"
    assert "credentials" in failed["error"]["message"]
    assert "credentials" in server.admin.get(url).json()["last_test_error"]


def test_an_s3_target_works_and_a_missing_bucket_says_so(server: Server, s3_endpoint: str) -> None:
    made = make(server, "s3", s3_config(s3_endpoint))
    assert made["config"]["secret_access_key"] == "**********"
    assert server.admin.post(f"/api/storage-targets/{made['id']}/test").json()["ok"] is True
    r = server.admin.post(
        "/api/storage-targets",
        json={
            "name": unique("st"),
            "kind": "s3",
            "config": {**s3_config(s3_endpoint), "bucket": "no-such-bucket"},
            "passphrase": PASSPHRASE,
        },
    )
    body = assert_error(r, 502, "target_unreachable")
    assert "no-such-bucket" in body["message"]


def test_bad_requests_are_clear_and_change_nothing(server: Server, tmp_path: Path) -> None:
    before = server.admin.get("/api/storage-targets").json()
    local = {"path": str(tmp_path / "t")}
    cases = [
        ({"kind": "ftp", "config": local}, 422, "unknown_kind"),
        ({"kind": "local", "config": {"path": "relative"}}, 422, "invalid_config"),
        ({"kind": "local", "config": local, "passphrase": "short"}, 422, None),
        ({"kind": "local", "config": local, "name": "Not A Slug"}, 422, "invalid_slug"),
        ({"kind": "local", "config": {"path": "/proc/no/such"}}, 502, "target_unreachable"),
    ]
    for over, status, code in cases:
        body = {"name": unique("st"), "passphrase": PASSPHRASE, **over}
        assert_error(server.admin.post("/api/storage-targets", json=body), status, code)
    assert server.admin.get("/api/storage-targets").json() == before
    made = make(server, "local", local)
    r = server.admin.post(
        "/api/storage-targets",
        json={"name": made["name"], "kind": "local", "config": local, "passphrase": PASSPHRASE},
    )
    assert_error(r, 409, "duplicate")
    assert server.admin.delete(f"/api/storage-targets/{made['id']}").status_code == 204
    assert_error(server.admin.get(f"/api/storage-targets/{made['id']}"), 404)
    # Forgetting a target leaves what it holds.
    assert (tmp_path / "t" / "moorage" / "target-key.age").exists()


def test_operators_and_viewers_cannot_see_targets(server: Server) -> None:
    for api in (server.operator, server.viewer):
        assert_error(api.get("/api/storage-targets"), 403, "forbidden")


# --- found by the attacker pass (issue 17) ----------------------------------------------


def test_a_targets_place_never_changes(server: Server, sftp_server: SftpServer) -> None:
    config = {**sftp_config(sftp_server), "password": sftp_server.password}
    del config["private_key"]
    made = make(server, "sftp", config)
    url = f"/api/storage-targets/{made['id']}"
    before = server.admin.get(url).json()
    for moved in ({"port": 52999}, {"host": "127.0.0.2"}, {"path": "/tmp/elsewhere"}):
        r = server.admin.patch(url, json={"config": {**moved, "password": sftp_server.password}})
        body = assert_error(r, 422, "target_moved")
        assert next(iter(moved)) in body["message"]
    assert server.admin.get(url).json() == before


def test_credentials_go_nowhere_new_without_being_sent_again(
    server: Server, sftp_server: SftpServer
) -> None:
    config = {**sftp_config(sftp_server), "password": sftp_server.password}
    del config["private_key"]
    made = make(server, "sftp", config)
    url = f"/api/storage-targets/{made['id']}"
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    for change in ({"host_key": other_key}, {"username": "someone-else"}):
        r = server.admin.patch(url, json={"config": {**change, "password": "**********"}})
        assert_error(r, 422, "credentials_required")
        assert_error(server.admin.patch(url, json={"config": change}), 422, "credentials_required")
    r = server.admin.patch(
        url, json={"config": {"host_key": sftp_server.host_key, "password": sftp_server.password}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["updated_at"] > made["updated_at"]
    rows = server.admin.get("/api/audit", params={"limit": 5}).json()["items"]
    update = next(row for row in rows if row["target_id"] == made["id"])
    assert update["details"]["changed"] == []  # the same key and the same password again
    r = server.admin.patch(url, json={"name": unique("st")})
    rows = server.admin.get("/api/audit", params={"limit": 5}).json()["items"]
    assert next(row for row in rows if row["target_id"] == made["id"])["details"]["changed"] == [
        "name"
    ]


def test_a_huge_key_object_on_the_target_is_refused_without_being_read_whole(
    server: Server, tmp_path: Path
) -> None:
    planted = tmp_path / "t" / "moorage" / "target-key.age"
    planted.parent.mkdir(parents=True)
    with open(planted, "wb") as f:
        f.truncate(300 << 20)  # sparse: costs no disk
    body = {"name": unique("st"), "kind": "local", "config": {"path": str(tmp_path / "t")}}
    r = server.admin.post("/api/storage-targets", json={**body, "passphrase": PASSPHRASE})
    assert "not a Moorage key" in assert_error(r, 502, "target_error")["message"]


def test_local_paths_are_real_and_stay_inside(server: Server, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    for path, status, code in (
        (str(tmp_path / "link"), 502, "target_unreachable"),
        (f"{tmp_path}/x/../real", 422, "invalid_config"),
        (f"{tmp_path}//real", 422, "invalid_config"),
    ):
        body = {"name": unique("st"), "kind": "local", "config": {"path": path}}
        r = server.admin.post("/api/storage-targets", json={**body, "passphrase": PASSPHRASE})
        assert_error(r, status, code)
    # A link planted below a target's root does not lead its writes elsewhere.
    inside = tmp_path / "inside"
    (inside).mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inside / "moorage").symlink_to(elsewhere)
    body = {"name": unique("st"), "kind": "local", "config": {"path": str(inside)}}
    r = server.admin.post("/api/storage-targets", json={**body, "passphrase": PASSPHRASE})
    assert_error(r, 502, "target_error")
    assert list(elsewhere.iterdir()) == []


def test_s3_names_are_checked_before_anything_connects(server: Server, s3_endpoint: str) -> None:
    for bad in ({"region": "../x"}, {"bucket": "../np-other"}, {"bucket": "UPPER"}):
        body = {
            "name": unique("st"),
            "kind": "s3",
            "config": {**s3_config(s3_endpoint), **bad},
            "passphrase": PASSPHRASE,
        }
        assert_error(server.admin.post("/api/storage-targets", json=body), 422, "invalid_config")
