"""The ``s3`` storage kind: a bucket on any S3-compatible endpoint, through boto3.

Path-style (``https://endpoint/bucket/key``) or virtual-host (``https://bucket.endpoint
/key``) addressing, or ``auto`` (boto3's choice: virtual-host when the bucket name is
DNS-safe). An object is uploaded with ``upload_fileobj``: in one PUT, or as a multipart
upload that S3 only shows once it is completed and that s3transfer aborts on a failure,
so a key holds the old object or the whole new one (SPEC section 11). Reads stream the
body in chunks; memory stays flat. The bucket is never created: a missing one is an
error that names it. The connection itself is ``s3_store.py``, imported when a
target is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from moorage.errors import InvalidInput
from moorage.plugins.kind_config import validate_config
from moorage.storage.keys import check_key

if TYPE_CHECKING:
    from moorage.storage.s3_store import S3Store


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


class S3Storage:
    """Registered as ``s3`` in the ``moorage.storage`` entry point group."""

    kind: ClassVar[str] = "s3"
    config_model: ClassVar[type[BaseModel]] = S3Config
    description: ClassVar[str] = "A bucket on Amazon S3 or any S3-compatible service."
    place_fields: ClassVar[frozenset[str]] = frozenset({"endpoint", "bucket", "prefix"})

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, S3Config, config)

    def open(self, config: dict[str, Any]) -> S3Store:
        from moorage.storage.s3_store import connect  # boto3 only when a target is used

        return connect(S3Config.model_validate(config))
