"""Source and trigger kinds with the JSON schema of their config, a sample and what each
can do (``capabilities``: clients branch on these, never on a kind's name)."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import State, Viewer
from moorage.api.schemas import KindCapability, KindList, KindOut
from moorage.plugins.spec import FixedPorts, SourceKind

router = APIRouter(prefix="/api/kinds", tags=["kinds"])


def source_capabilities(source: SourceKind) -> list[KindCapability]:
    """What a source kind declares it can do (optional attributes default to no)."""
    found: list[KindCapability] = []
    if source.supports_volumes:
        found.append("volumes")
    if isinstance(source, FixedPorts):
        found.append("fixed_ports")
    if getattr(source, "pulls_images", False):
        found.append("pull")
    return found


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
                capabilities=source_capabilities(source),
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
