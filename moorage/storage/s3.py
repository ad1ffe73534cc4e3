"""The ``s3`` storage kind: a bucket on any S3-compatible endpoint, through boto3.

Path-style (``https://endpoint/bucket/key``) or virtual-host (``https://bucket.endpoint
/key``) addressing, or ``auto`` (boto3's choice: virtual-host when the bucket name is
DNS-safe). An object is uploaded with ``upload_fileobj``: in one PUT, or as a multipart
upload that S3 only shows once it is completed and that s3transfer aborts on a failure,
so a key holds the old object or the whole new one (SPEC section 11). Reads stream the
body in chunks; memory stays flat. The bucket is never created: a missing one is an
error that names it.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Literal
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from moorage.errors import InvalidInput, TargetError
from moorage.plugins.kind_config import validate_config
from moorage.plugins.spec import StoredObject
from moorage.storage.keys import check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1 << 20
PART = 16 << 20  # multipart part size: 16 MiB parts, four at once (64 MiB in flight)
AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


class S3Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str = Field(description="The endpoint URL, e.g. https://s3.eu-central-1.example")
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field("", max_length=256, description="Keys start with this, e.g. 'moorage/'.")
    region: str = Field("us-east-1", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    access_key_id: str = Field(min_length=1, max_length=256)
    secret_access_key: SecretStr
    addressing: Literal["auto", "path", "virtual"] = "auto"

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        if "@" in urlsplit(value).netloc:
            # A user or password in the URL would be shown and stored as plain text:
            # credentials go in access_key_id and secret_access_key, which are sealed.
            raise ValueError("must not hold a user or password (use access_key_id/secret)")
        return value.rstrip("/")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value:
            return value
        value = value if value.endswith("/") else value + "/"
        try:
            check_key(value, prefix=True)
        except InvalidInput:
            raise ValueError(
                f"{value!r} is not a key prefix: use /-separated names of letters, digits, "
                "'.', '_' and '-' (no '..', no leading '/'), as in 'moorage/'"
            ) from None
        return value


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


class S3Storage:
    """Registered as ``s3`` in the ``moorage.storage`` entry point group."""

    kind: ClassVar[str] = "s3"
    config_model: ClassVar[type[BaseModel]] = S3Config
    description: ClassVar[str] = "A bucket on Amazon S3 or any S3-compatible service."
    place_fields: ClassVar[frozenset[str]] = frozenset({"endpoint", "bucket", "prefix"})

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, S3Config, config)

    def open(self, config: dict[str, Any]) -> S3Store:
        cfg = S3Config.model_validate(config)
        try:
            client = boto3.session.Session().client(
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
            raise TargetError(
                f"cannot reach {cfg.endpoint}: {exc}", code="target_unreachable"
            ) from exc
        return store
