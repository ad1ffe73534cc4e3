"""The ``s3`` storage kind's connection to a bucket, through boto3 (``S3Store``).

Apart from ``s3.py`` (the kind's config and plugin) so that boto3, about 10 MiB of
Python objects, is imported only when a target is used, not by every ``moorage serve``
(SPEC section 8: server idle RSS). Upload and read rules: see ``s3.py``.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, BinaryIO

from boto3.s3.transfer import TransferConfig
from boto3.session import Session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from moorage.errors import TargetError
from moorage.plugins.spec import StoredObject
from moorage.storage.keys import check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from moorage.storage.s3 import S3Config

CHUNK = 1 << 20
PART = 16 << 20  # multipart part size: 16 MiB parts, four at once (64 MiB in flight)
AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


class _Counted:
    """A reader that counts what was read through it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.count = source, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.source.read(size)
        self.count += len(chunk)
        return chunk


class S3Store:
    """``TargetStore`` over one bucket (and key prefix)."""

    def __init__(self, client: S3Client, cfg: S3Config) -> None:
        self._client, self.bucket, self.prefix = client, cfg.bucket, cfg.prefix
        self._where = f"bucket {cfg.bucket!r} at {cfg.endpoint}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _failed(self, what: str, exc: Exception) -> TargetError:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        if code in AUTH_CODES:
            return TargetError(
                f"{self._where} refused to {what}: {code}; check the access key's rights",
                code="target_auth_failed",
            )
        return TargetError(f"cannot {what} in {self._where}: {exc}")

    def put(self, key: str, source: BinaryIO) -> int:
        counted = _Counted(source)
        config = TransferConfig(multipart_chunksize=PART, max_concurrency=4)
        try:
            self._client.upload_fileobj(counted, self.bucket, self._key(key), Config=config)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(f"write {key!r}", exc) from exc
        return counted.count

    def get(self, key: str, sink: BinaryIO) -> int:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            copied = 0
            try:
                for chunk in body.iter_chunks(CHUNK):
                    sink.write(chunk)
                    copied += len(chunk)
            finally:
                body.close()  # a sink that stopped early (a reader found it corrupt)
            return copied
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise TargetError(
                    f"no object {key!r} in {self._where}", code="target_object_missing"
                ) from None
            raise self._failed(f"read {key!r}", exc) from exc
        except BotoCoreError as exc:
            raise self._failed(f"read {key!r}", exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(f"delete {key!r}", exc) from exc

    def list(self, prefix: str = "") -> list[StoredObject]:
        check_key(prefix, prefix=True)
        found = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(
                        StoredObject(
                            item["Key"][len(self.prefix) :],
                            item["Size"],
                            item["LastModified"].astimezone(UTC),
                        )
                    )
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("list objects", exc) from exc
        return sorted(found, key=lambda o: o.key)

    def close(self) -> None:
        self._client.close()


def connect(cfg: S3Config) -> S3Store:
    """An ``S3Store`` on ``cfg``'s bucket, checked with ``HeadBucket``.

    Raises ``TargetError``: ``target_unreachable`` for an endpoint that does not answer
    or a bucket that does not exist, ``target_auth_failed`` for refused keys,
    ``target_error`` for a config boto3 cannot use.
    """
    try:
        client = Session().client(
            "s3",
            endpoint_url=cfg.endpoint,
            region_name=cfg.region,
            aws_access_key_id=cfg.access_key_id,
            aws_secret_access_key=cfg.secret_access_key.get_secret_value(),
            config=Config(
                s3={"addressing_style": cfg.addressing},
                connect_timeout=20,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
    except (BotoCoreError, ValueError) as exc:
        raise TargetError(f"cannot use {cfg.endpoint}: {exc}", code="target_error") from exc
    store = S3Store(client, cfg)
    try:
        client.head_bucket(Bucket=cfg.bucket)
    except EndpointConnectionError as exc:
        client.close()
        raise TargetError(
            f"cannot reach {cfg.endpoint}: check the endpoint URL", code="target_unreachable"
        ) from exc
    except ClientError as exc:
        client.close()
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            raise TargetError(
                f"there is no bucket {cfg.bucket!r} at {cfg.endpoint}; create it first",
                code="target_unreachable",
            ) from exc
        raise store._failed("open the bucket", exc) from exc
    except BotoCoreError as exc:
        client.close()
        raise TargetError(f"cannot reach {cfg.endpoint}: {exc}", code="target_unreachable") from exc
    return store
