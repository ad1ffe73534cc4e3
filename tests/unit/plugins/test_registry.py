"""The plugin registry: entry points, built-ins, duplicate kinds."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from moorage.errors import InvalidInput, PluginError
from moorage.plugins.registry import Registry
from moorage.plugins.spec import SOURCE_GROUP, TRIGGER_GROUP, SourceKind, TriggerKind


def ep(name: str, value: str, group: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=group)


def test_built_in_kinds_register_through_installed_entry_points() -> None:
    registry = Registry.load()
    assert set(registry.sources) == {"image", "compose"}
    assert set(registry.triggers) == {"webhook", "schedule", "image-poll"}
    for source in registry.sources.values():
        assert isinstance(source, SourceKind)
        source.validate(source.sample())
    for trigger in registry.triggers.values():
        assert isinstance(trigger, TriggerKind)
        trigger.validate(trigger.sample())


def test_a_duplicate_kind_is_a_start_up_error_naming_both_plugins() -> None:
    sources = [
        ep("image", "moorage.sources.image:ImageSource", SOURCE_GROUP),
        ep("image2", "moorage.sources.image:ImageSource", SOURCE_GROUP),
    ]
    with pytest.raises(PluginError, match="'image' is registered twice") as info:
        Registry.from_entry_points(sources, [])
    assert info.value.message.count("moorage.sources.image:ImageSource") == 2


def test_a_plugin_that_does_not_implement_the_protocol_is_refused() -> None:
    triggers = [ep("bad", "moorage.sources.image:ImageSource", TRIGGER_GROUP)]
    with pytest.raises(PluginError, match="does not implement TriggerKind"):
        Registry.from_entry_points([], triggers)


def test_a_plugin_that_fails_to_import_is_reported() -> None:
    with pytest.raises(PluginError, match="cannot load plugin"):
        Registry.from_entry_points([ep("x", "no.such.module:Thing", SOURCE_GROUP)], [])


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="known kinds: compose, image"):
        Registry.load().source("helm")
