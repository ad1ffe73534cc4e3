"""Real storage servers for the off-site tests, started by the project's own scripts:
``scripts/sftp.sh`` (Debian's openssh-server as its own sshd on a loopback port) and
``scripts/s3.sh`` (moto's S3-compatible server on a loopback port)."""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import REPO


@dataclass(frozen=True)
class SftpServer:
    host: str
    port: int
    user: str
    password: str
    private_key: str
    host_key: str
    home: Path


def _run(script: str) -> str:
    done = subprocess.run(
        [str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/{script} failed: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def sftp_server() -> SftpServer:
    where = Path(os.environ.get("MOORAGE_TEST_SFTP_DIR") or _run("sftp.sh"))
    env = dict(
        line.split("=", 1) for line in (where / "env").read_text().splitlines() if "=" in line
    )
    pub = (where / "host_key.pub").read_text().split()
    return SftpServer(
        host=env["host"],
        port=int(env["port"]),
        user=env["user"],
        password=env["password"],
        private_key=(where / "client_key").read_text(),
        host_key=f"{pub[0]} {pub[1]}",
        home=where / "home",
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    return os.environ.get("MOORAGE_TEST_S3_URL") or _run("s3.sh")


def make_bucket(endpoint: str, name: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # moto accepts any key
    )
    try:
        client.create_bucket(Bucket=name)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    finally:
        client.close()  # its sockets, not the garbage collector's (ResourceWarning)


def sftp_config(server: SftpServer, **over: Any) -> dict[str, Any]:
    """A config for a fresh directory under the test user's home, by key."""
    return {
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "path": f"/tmp/moorage-test-sftp/home/t-{uuid.uuid4().hex[:8]}",
        "private_key": server.private_key,
        "host_key": server.host_key,
        **over,
    }


def s3_config(endpoint: str, bucket: str = "path-bucket", **over: Any) -> dict[str, Any]:
    make_bucket(endpoint, bucket)
    return {
        "endpoint": endpoint,
        "bucket": bucket,
        "prefix": f"t-{uuid.uuid4().hex[:8]}/",
        "access_key_id": "test",
        "secret_access_key": "test",
        "addressing": "path",
        **over,
    }
