"""Source and trigger kinds with the JSON schema of their config and a sample."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import State, Viewer
from moorage.api.schemas import KindList, KindOut

router = APIRouter(prefix="/api/kinds", tags=["kinds"])


@router.get("")
def list_kinds(actor: Viewer, state: State) -> KindList:
    items: list[KindOut] = []
    for name, source in sorted(state.registry.sources.items()):
        items.append(
            KindOut(
                kind=name,
                category="source",
                description=source.description,
                schema_=source.config_model.model_json_schema(),
                sample=source.sample(),
            )
        )
    for name, trigger in sorted(state.registry.triggers.items()):
        items.append(
            KindOut(
                kind=name,
                category="trigger",
                description=trigger.description,
                schema_=trigger.config_model.model_json_schema(),
                sample=trigger.sample(),
            )
        )
    return KindList(items=items)
