"""Source and trigger kinds: their config's JSON schema, a sample and what each can do."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KindCapability = Literal["volumes", "fixed_ports", "pull"]
"""``volumes``: mounts Moorage volumes (and so can snapshot them); ``fixed_ports``: its
config may publish fixed host ports; ``pull``: a deploy can pull its image again."""


class KindOut(BaseModel):
    kind: str
    category: Literal["source", "trigger"]
    description: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    sample: dict[str, Any]
    capabilities: list[KindCapability] = Field(
        default_factory=list,
        description="What the kind can do, for clients to branch on instead of kind names",
    )

    model_config = ConfigDict(populate_by_name=True)


class KindList(BaseModel):
    items: list[KindOut]
