"""Sessions, users and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moorage.api.schemas.base import OPAQUE_TEXT, Body


class LoginIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024, json_schema_extra=OPAQUE_TEXT)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    username: str
    role: str
    created_at: datetime


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str


class UserIn(Body):
    username: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin"]
    password: str = Field(min_length=1, max_length=1024, json_schema_extra=OPAQUE_TEXT)


class UserPatch(Body):
    role: Literal["viewer", "operator", "admin"] | None = None
    password: str | None = Field(
        default=None, min_length=1, max_length=1024, json_schema_extra=OPAQUE_TEXT
    )


class UserList(BaseModel):
    items: list[UserOut]


class TokenIn(Body):
    name: str = Field(default="api", min_length=1, max_length=64)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only a digest is stored")


class TokenList(BaseModel):
    items: list[TokenOut]
