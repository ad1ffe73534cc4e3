"""The catalog of a target and importing a copy through a real ``moorage serve`` (SPEC
section 11): the catalog lists every complete copy with its workload, snapshot, size,
capture time and SHA-256 read from the copy's encrypted metadata; an import brings a copy
back as a ready ``import`` snapshot with the same bytes; a copy of a workload this
instance does not have is 409 ``workload_unknown``; a key that is not a copy's is 422.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

from moorage.offsite import layout
from moorage.storage.s3 import S3Storage
from tests.conftest import Server, assert_error
from tests.storage.conftest import s3_config
from tests.storage.test_offsite_api import (
    capture,
    copy_state,
    make_target,
    wait_snapshot,
    workload_with_data,
)


def test_the_catalog_lists_copies_and_an_import_brings_one_back(
    server: Server, project: str, s3_endpoint: str
) -> None:
    config = s3_config(s3_endpoint)
    target = make_target(server.admin, "s3", config)
    w = workload_with_data(server.admin, server.url, server.data_dir, project, os.urandom(1 << 20))
    snap = capture(server.operator, w["id"])
    r = server.operator.put(f"/api/workloads/{w['id']}/offsite", json={"target_id": target})
    assert r.status_code == 200, r.text
    wait_snapshot(server.viewer, w["id"], snap["id"], lambda s: copy_state(s, target) == "verified")

    url = f"/api/storage-targets/{target}/catalog"
    assert_error(server.operator.get(url), 403)
    [entry] = server.admin.get(url).json()["items"]
    assert entry["workload_id"] == w["id"] and entry["workload_name"] == w["name"]
    assert entry["snapshot_id"] == snap["id"] and entry["known_workload"] is True
    assert (entry["size"], entry["sha256"]) == (snap["size"], snap["sha256"])
    assert entry["ciphertext_size"] > entry["size"] and entry["error"] is None

    r = server.admin.post(f"{url}/{entry['key']}/import")
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["origin"] == "import" and got["status"] == "ready" and got["id"] != snap["id"]
    assert (got["size"], got["sha256"]) == (snap["size"], snap["sha256"])
    assert got["volumes"] == ["data"]

    # The same copy under a workload id this instance never had.
    stranger = "wl_" + "0" * 16
    store = S3Storage().open(config)
    try:
        foreign = entry["key"].replace(w["id"], stranger)
        for src, dst in (
            (entry["key"], foreign),
            (layout.meta_key(entry["key"]), layout.meta_key(foreign)),
        ):
            raw = io.BytesIO()
            store.get(src, raw)
            raw.seek(0)
            store.put(dst, raw)
    finally:
        store.close()
    listed = server.admin.get(url).json()["items"]
    assert {e["workload_id"]: e["known_workload"] for e in listed} == {
        w["id"]: True,
        stranger: False,
    }
    body = assert_error(server.admin.post(f"{url}/{foreign}/import"), 409, "workload_unknown")
    assert w["name"] in body["message"] and "instance restore" in body["message"]
    assert_error(server.admin.post(f"{url}/snapshots/nope/import"), 422, "invalid_key")
    before = server.admin.get(f"/api/workloads/{w['id']}/snapshots").json()["items"]
    assert len(before) == 2  # the capture and the one import, nothing else


HOSTILE_META = {
    "a string for the workload": {"workload": "str", "snapshot": {"size": 1, "sha256": "0" * 64}},
    "a list for the snapshot": {"workload": {"name": "x"}, "snapshot": []},
    "no snapshot": {"workload": {"name": "x"}},
    "a size of text": {"snapshot": {"size": "big", "sha256": "0" * 64}},
    "a digest that is not one": {"snapshot": {"size": 1, "sha256": "../../etc"}},
    "a number for copied_at": {"snapshot": {"size": 1, "sha256": "0" * 64}, "copied_at": 5},
}


def test_metadata_of_a_foreign_shape_is_listed_with_its_error(
    server: Server, project: str, s3_endpoint: str
) -> None:
    """Metadata someone with the target's (public) recipient wrote in another shape: the
    catalog lists each such copy with its error (never a 500) and an import refuses it."""
    config = s3_config(s3_endpoint)
    target = make_target(server.admin, "s3", config)
    recipient = server.admin.get(f"/api/storage-targets/{target}").json()["recipient"]
    w = workload_with_data(server.admin, server.url, server.data_dir, project, b"x")
    store = S3Storage().open(config)
    keys = {}
    try:
        for n, (case, meta) in enumerate(sorted(HOSTILE_META.items())):
            key = layout.data_key(w["id"], f"sn_{n:016x}", datetime(2026, 1, 1, tzinfo=UTC))
            store.put(key, io.BytesIO(b"not a copy"))
            layout.write_meta(store, key, meta, recipient)
            keys[key] = case
    finally:
        store.close()
    url = f"/api/storage-targets/{target}/catalog"
    r = server.admin.get(url)
    assert r.status_code == 200, r.text
    listed = {e["key"]: e for e in r.json()["items"]}
    for key, case in keys.items():
        assert listed[key]["error"] and "not Moorage's" in listed[key]["error"], case
        assert listed[key]["size"] is None, case
        assert_error(server.admin.post(f"{url}/{key}/import"), 502, "copy_corrupt")
    assert server.admin.get(f"/api/workloads/{w['id']}/snapshots").json()["items"] == []
