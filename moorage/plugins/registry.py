"""Load source, trigger and storage kinds from entry points; a duplicate kind is a
start-up error."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from moorage.errors import InvalidInput, PluginError
from moorage.plugins.spec import (
    SOURCE_GROUP,
    STORAGE_GROUP,
    TRIGGER_GROUP,
    SourceKind,
    StorageKind,
    TriggerKind,
)


@dataclass
class Registry:
    sources: dict[str, SourceKind] = field(default_factory=dict)
    triggers: dict[str, TriggerKind] = field(default_factory=dict)
    storage: dict[str, StorageKind] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Registry:
        """Build the registry from every installed package's entry points."""
        return cls.from_entry_points(
            entry_points(group=SOURCE_GROUP),
            entry_points(group=TRIGGER_GROUP),
            entry_points(group=STORAGE_GROUP),
        )

    @classmethod
    def from_entry_points(
        cls,
        sources: Iterable[EntryPoint],
        triggers: Iterable[EntryPoint],
        storage: Iterable[EntryPoint] = (),
    ) -> Registry:
        registry = cls()
        origins: dict[tuple[str, str], str] = {}
        for group, eps, table, protocol in (
            ("source", sources, registry.sources, SourceKind),
            ("trigger", triggers, registry.triggers, TriggerKind),
            ("storage", storage, registry.storage, StorageKind),
        ):
            for ep in eps:
                plugin = _instantiate(ep)
                if not isinstance(plugin, protocol):
                    raise PluginError(
                        f"{group} plugin {ep.value} does not implement {protocol.__name__}"
                    )
                kind = plugin.kind
                if kind in table:
                    raise PluginError(
                        f"{group} kind {kind!r} is registered twice: by "
                        f"{origins[(group, kind)]} and by {ep.value}; uninstall one of them"
                    )
                table[kind] = plugin  # type: ignore[assignment]
                origins[(group, kind)] = ep.value
        return registry

    def source(self, kind: str) -> SourceKind:
        try:
            return self.sources[kind]
        except KeyError:
            raise InvalidInput(
                f"unknown source kind {kind!r}; known kinds: {', '.join(sorted(self.sources))}",
                code="unknown_kind",
            ) from None

    def storage_kind(self, kind: str) -> StorageKind:
        try:
            return self.storage[kind]
        except KeyError:
            raise InvalidInput(
                f"unknown storage kind {kind!r}; known kinds: {', '.join(sorted(self.storage))}",
                code="unknown_kind",
            ) from None

    def trigger(self, kind: str) -> TriggerKind:
        try:
            return self.triggers[kind]
        except KeyError:
            raise InvalidInput(
                f"unknown trigger kind {kind!r}; known kinds: {', '.join(sorted(self.triggers))}",
                code="unknown_kind",
            ) from None


def _instantiate(ep: EntryPoint) -> Any:
    try:
        factory = ep.load()
        return factory()
    except Exception as exc:
        raise PluginError(f"cannot load plugin {ep.name} from {ep.value}: {exc}") from exc
