"""Projects and their stages."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from moorage.api.schemas.base import MULTILINE_TEXT, Body


class ProjectIn(Body):
    slug: str = Field(max_length=63)
    stages: list[str] | None = None
    description: str = Field(default="", max_length=2000, json_schema_extra=MULTILINE_TEXT)


class ProjectPatch(Body):
    stages: list[str] | None = None
    description: str | None = Field(default=None, max_length=2000, json_schema_extra=MULTILINE_TEXT)


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    slug: str
    description: str
    stages: list[str]
    created_at: datetime


class ProjectList(BaseModel):
    items: list[ProjectOut]
