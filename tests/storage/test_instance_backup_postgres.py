"""The instance bundle of a PostgreSQL store (``offsite/dumps.py``: ``pg_dump`` and
``pg_restore``) through real server processes and the real test cluster: a server on
PostgreSQL backs itself up to a ``local`` target while it keeps writing; the machine is
lost (server stopped, database dropped, data directory deleted); ``moorage instance
restore`` loads the dump into a new empty database, and a new server answers the old
admin token with the same project, workload, env secret, trigger and users. A store
that already has tables, and a bundle of the other store kind, are refused and change
nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import MOORAGE, Api, admin_api, start_server, stop_server, unique
from tests.storage.test_offsite_api import PASSPHRASE, make_target

PG_URL = os.environ.get("MOORAGE_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="MOORAGE_TEST_DATABASE_URL not set")


def _database(name: str) -> str:
    assert PG_URL
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def databases() -> Iterator[list[str]]:
    """Fresh empty databases on the test cluster, by name; dropped afterwards."""
    assert PG_URL
    made: list[str] = []
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")

    for n in range(2):
        name = f"moorage_ib_{os.getpid()}_{n}"
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        made.append(name)
    yield made
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _restore(spec: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MOORAGE, "instance", "restore", "--target", str(spec), "--passphrase-stdin"],
        env=env,
        input=PASSPHRASE + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_postgresql_instance_comes_back_into_an_empty_database(
    tmp_path: Path, databases: list[str]
) -> None:
    first, second = databases
    data_dir = tmp_path / "var"
    proc, url, env = start_server(data_dir, {"MOORAGE_DATABASE_URL": _database(first)})
    target_dir = tmp_path / "target"
    stop = threading.Event()
    try:
        api = admin_api(url, env)
        project = unique("p")
        assert api.post("/api/projects", json={"slug": project}).status_code == 201
        r = api.post(
            "/api/workloads",
            json={
                "name": "shop",
                "kind": "image",
                "project": project,
                "stage": "production",
                "config": {"image": "moorage-test/httpd:1"},
            },
        )
        assert r.status_code == 201, r.text
        wid = r.json()["id"]
        r = api.put(
            f"/api/workloads/{wid}/env",
            json={"DB_PASSWORD": {"value": "s3cret value", "secret": True}},
        )
        assert r.status_code == 200, r.text
        r = api.post(
            "/api/triggers",
            json={"kind": "webhook", "name": unique("hook"), "config": {}},
        )
        assert r.status_code == 201, r.text
        r = api.post(
            "/api/users",
            json={"username": "olga", "password": "a long password 1", "role": "operator"},
        )
        assert r.status_code == 201, r.text
        target = make_target(api, "local", {"path": str(target_dir)})

        def write_loop() -> None:  # the server keeps writing while pg_dump runs
            n = 0
            while not stop.is_set():
                api.post("/api/projects", json={"slug": f"load-{n}"})
                n += 1

        writer = threading.Thread(target=write_loop, daemon=True)
        writer.start()
        r = api.post("/api/instance/backups", json={"target_id": target})
        assert r.status_code == 201, r.text
        stop.set()
        writer.join()
        made = r.json()
        assert made["key"].startswith("instance/") and made["size"] > 0
        raw = (target_dir / made["key"]).read_bytes()
        assert b"PGDMP" not in raw and b"s3cret value" not in raw  # ciphertext only
    finally:
        stop.set()
        stop_server(proc)
    shutil.rmtree(data_dir)

    spec = tmp_path / "target.json"
    spec.write_text(json.dumps({"kind": "local", "config": {"path": str(target_dir)}}))
    offline = {**env, "MOORAGE_DATA_DIR": str(data_dir), "MOORAGE_DATABASE_URL": ""}

    # A bundle of the other store kind: refused, nothing written.
    other = _restore(spec, offline)
    assert other.returncode == 1 and "postgresql store" in other.stderr, other.stderr
    assert not (data_dir / "moorage.db").exists() and not (data_dir / "instance.key").exists()

    # A database that already has tables (the first one): refused, nothing written.
    busy = _restore(spec, {**offline, "MOORAGE_DATABASE_URL": _database(first)})
    assert busy.returncode == 1 and "already has tables" in busy.stderr, busy.stderr
    assert not (data_dir / "instance.key").exists()

    back = _restore(spec, {**offline, "MOORAGE_DATABASE_URL": _database(second)})
    assert back.returncode == 0, back.stderr
    assert (data_dir / "instance.key").stat().st_mode & 0o077 == 0
    engine = create_engine(_database(second))
    try:
        with engine.connect() as conn:
            assert "workloads" in inspect(conn).get_table_names()
    finally:
        engine.dispose()

    proc, url, env = start_server(data_dir, {"MOORAGE_DATABASE_URL": _database(second)})
    try:
        old = Api(url, api.token)  # users and tokens are back
        assert wid in {w["id"] for w in old.get("/api/workloads").json()["items"]}
        env_read = old.get(f"/api/workloads/{wid}/env/DB_PASSWORD")
        assert env_read.status_code == 200, env_read.text
        assert "s3cret value" in env_read.text  # the sealed secret opens with the key
        assert "olga" in old.get("/api/users").text
        probe = old.post(f"/api/storage-targets/{target}/test").json()
        assert probe["ok"] is True, probe
    finally:
        stop_server(proc)
