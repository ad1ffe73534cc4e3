"""The ``sftp`` storage kind: a directory on any SSH server, through paramiko.

The server's host key is pinned (``host_key``, a ``known_hosts``-style ``type base64``
line): a server that shows another key is refused, and a config without one is refused
with the key the server showed, to check and paste (no trust on first use). Objects
are written under a scratch name and moved over their key with OpenSSH's
``posix-rename@openssh.com`` (atomic replace): a failure or a cut connection part-way
leaves the old object or none (SPEC section 11).

paramiko is chosen over driving rclone for one dependency less at run time and errors
that name the field to fix; its throughput is measured by ``bench/offsite.py``. It is
imported when a config is checked or a target used: the session is ``sftp_session.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from moorage.plugins.kind_config import validate_config

if TYPE_CHECKING:
    from moorage.storage.sftp_session import SftpStore


class SftpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(22, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=64)
    path: str = Field(description="An absolute directory on the server; made when missing.")
    private_key: SecretStr | None = Field(None, description="An OpenSSH or PEM private key.")
    password: SecretStr | None = None
    host_key: str | None = Field(
        None, description="The server's public host key, 'ssh-ed25519 AAAA...'."
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path on the server")
        return value.rstrip("/") or "/"

    @field_validator("host_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is not None:
            from moorage.storage.sftp_session import host_key

            host_key(value)
        return value

    @field_validator("private_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from moorage.storage.sftp_session import private_key

            private_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> SftpConfig:
        if (self.private_key is None) == (self.password is None):
            raise ValueError("give exactly one of private_key and password")
        return self


class SftpStorage:
    """Registered as ``sftp`` in the ``moorage.storage`` entry point group."""

    kind: ClassVar[str] = "sftp"
    config_model: ClassVar[type[BaseModel]] = SftpConfig
    description: ClassVar[str] = "A directory on an SSH server, reached over SFTP."
    place_fields: ClassVar[frozenset[str]] = frozenset({"host", "port", "path"})

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, SftpConfig, config)

    def open(self, config: dict[str, Any]) -> SftpStore:
        from moorage.storage.sftp_session import connect  # paramiko only when a target is used

        return connect(SftpConfig.model_validate(config))
