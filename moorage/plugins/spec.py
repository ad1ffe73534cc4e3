"""Every extension point of Moorage, in one file.

A source kind knows how to deploy one kind of workload; a trigger kind knows
one way of starting deploys. Built-in kinds implement these Protocols and are
registered through the same entry points a third-party package would use:

    [project.entry-points."moorage.sources"]
    mykind = "mypackage.module:MySource"

Deploy, teardown and reconcile join the source contract with the deploy issue;
until then a kind only validates its config.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

SOURCE_GROUP = "moorage.sources"
TRIGGER_GROUP = "moorage.triggers"


@runtime_checkable
class SourceKind(Protocol):
    """A plugin that deploys one kind of workload (``image``, ``compose``, ...)."""

    kind: ClassVar[str]
    """The kind's name as used in the API: lower-case slug, unique among sources."""

    config_model: ClassVar[type[BaseModel]]
    """Pydantic model of the workload config; its JSON schema drives API, UI and docs."""

    description: ClassVar[str]
    """One sentence shown next to the kind in the UI and in ``GET /api/kinds``."""

    def sample(self) -> dict[str, Any]:
        """Return a valid example config, shown in the UI form and the docs."""
        ...

    def validate(self, config: dict[str, Any]) -> BaseModel:
        """Check a config and return the parsed model; raise InvalidInput otherwise."""
        ...


@runtime_checkable
class TriggerKind(Protocol):
    """A plugin that starts deploys of its bound workloads (``webhook``, ``schedule``...)."""

    kind: ClassVar[str]
    """The kind's name as used in the API: lower-case slug, unique among triggers."""

    config_model: ClassVar[type[BaseModel]]
    """Pydantic model of the trigger config; its JSON schema drives API, UI and docs."""

    description: ClassVar[str]
    """One sentence shown next to the kind in the UI and in ``GET /api/kinds``."""

    uses_token: ClassVar[bool]
    """True when the trigger is reached through ``POST /hooks/{token}``."""

    def sample(self) -> dict[str, Any]:
        """Return a valid example config, shown in the UI form and the docs."""
        ...

    def validate(self, config: dict[str, Any]) -> BaseModel:
        """Check a config and return the parsed model; raise InvalidInput otherwise."""
        ...
