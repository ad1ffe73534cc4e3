"""A workload's config as people type it: ``--set a.b=value``, a JSON or YAML file.

Pure functions (no HTTP): parse the input and turn it into the JSON Merge Patch
(RFC 7386) that ``PATCH /api/workloads/{id}`` takes.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

from moorage.cli.client import CliError

JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}
INDEX = re.compile(r"\[(\d+)\]")


def parse_value(text: str, types: set[str] | None = None) -> Any:
    """A ``--set`` value: JSON when it parses as JSON (``8080``, ``true``, ``null``,
    ``["a", "b"]``, ``{"http": "/"}``), else the text itself.

    ``types`` are the JSON Schema types the config allows at that key (``schema_types``):
    a parsed value of a type the key does not take stays text when the key takes text,
    so ``image=12345`` is the string ``"12345"`` and ``port=8080`` the number 8080.
    ``null`` always parses (it removes the key: RFC 7386)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if value is None or not types:
        return value
    kind = JSON_TYPES.get(type(value), "")
    fits = kind in types or (kind == "integer" and "number" in types)
    return value if fits or "string" not in types else text


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a schema node, with ``$ref`` (to ``#/$defs/...``), ``anyOf``,
    ``oneOf`` and ``allOf`` followed (pydantic's JSON Schema uses these)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return _resolve(node, root)
    found = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for alternative in schema.get(key, []):
            found += _resolve(alternative, root)
    return found


def schema_types(schema: dict[str, Any] | None, path: list[str | int]) -> set[str]:
    """The JSON Schema types a kind's config schema allows at ``path`` (keys and list
    indexes); empty when the schema says nothing there (then any JSON goes)."""
    if not schema:
        return set()
    nodes = _resolve(schema, schema)
    for part in path:
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int):
                items = node.get("items")
                if isinstance(items, dict):
                    following += _resolve(items, schema)
            else:
                child = node.get("properties", {}).get(part)
                if isinstance(child, dict):
                    following += _resolve(child, schema)
        nodes = following
    types: set[str] = set()
    for node in nodes:
        declared = node.get("type")
        types |= {declared} if isinstance(declared, str) else set(declared or [])
    return types


def parse_key(key: str) -> list[str | int]:
    """``health.http`` -> ``["health", "http"]``; ``command[1]`` and ``command.1`` ->
    ``["command", 1]`` (an index reaches into a list the config already holds)."""
    parts: list[str | int] = []
    for part in INDEX.sub(r".\1", key.strip()).split("."):
        if not part:
            raise CliError(f"--set takes KEY=VALUE with a dotted KEY, not {key!r}")
        parts.append(int(part) if part.isdigit() else part)
    if isinstance(parts[0], int):
        raise CliError(f"--set {key}: a key starts with a name, not an index")
    return parts


def _set_in_list(
    working: dict[str, Any], key: str, path: list[str | int], value: Any
) -> list[str | int]:
    """Set ``value`` at ``path`` in ``working`` (a copy of the current config), where the
    path goes through a list; return the path of the outermost list it went through."""
    node: Any = working
    outer: list[str | int] | None = None
    for depth, part in enumerate(path[:-1]):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise CliError(f"--set {key}: no item {part} there in the current config")
        elif not isinstance(node, dict):
            raise CliError(f"--set {key}: {part!r} is not inside an object")
        elif part not in node or node[part] is None:
            node[part] = {}
        nxt = path[depth + 1]
        if isinstance(nxt, int) and outer is None:
            outer = path[: depth + 1]
            if not isinstance(node[part], list):
                raise CliError(f"--set {key}: {part!r} is not a list in the current config")
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last > len(node):
            raise CliError(
                f"--set {key}: the list has {len(node) if isinstance(node, list) else 0} "
                "items; an index may name one of them or the next"
            )
        if value is None:
            if last < len(node):
                del node[last]
        elif last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        node[last] = value
    assert outer is not None  # the caller only sends paths with an index
    return outer


def dotted_patch(
    assignments: list[str],
    current: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``["health.http=/", "image=x:1"]`` -> ``{"health": {"http": "/"}, "image": "x:1"}``.

    With the workload's ``current`` config, a key may index a list it holds
    (``command[1]=-v`` or ``command.1=-v``; the next index appends, ``=null`` removes
    the item): the patch then carries the whole new list, since a JSON Merge Patch
    (RFC 7386) replaces arrays whole. With the kind's config ``schema``, values are read
    as the key's type (``parse_value``). Raises ``CliError`` naming the assignment."""
    patch: dict[str, Any] = {}
    working = copy.deepcopy(current or {})
    lists: dict[tuple[str, ...], None] = {}  # keys of the lists set by item, in order
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise CliError(f"--set takes KEY=VALUE with a dotted KEY, not {assignment!r}")
        parts = parse_key(key)
        value = parse_value(raw, schema_types(schema, parts))
        if any(isinstance(p, int) for p in parts):
            if current is None:
                raise CliError(f"--set {key}: an index needs the workload's current config")
            # The keys down to the outermost list are names (an index is never first).
            lists[tuple(map(str, _set_in_list(working, key, parts, value)))] = None
            continue
        node = patch
        for part in map(str, parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CliError(f"--set {key}: {part!r} is set to a value above")
            node = child
        node[str(parts[-1])] = value
    for list_path in lists:
        where: Any = patch
        source: Any = working
        for part in list_path[:-1]:
            where = where.setdefault(part, {})
            source = source[part]
            if not isinstance(where, dict):
                raise CliError(f"--set {'.'.join(list_path)}: set both whole and by item")
        if list_path[-1] in where:
            raise CliError(f"--set {'.'.join(list_path)}: set both whole and by item")
        where[list_path[-1]] = source[list_path[-1]]
    return patch


def read_document(path: Path) -> Any:
    """A JSON or YAML file (YAML reads JSON too), with a one-line error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is neither JSON nor YAML: {exc}") from None


def read_config(path: Path) -> dict[str, Any]:
    """A whole config from a JSON or YAML file; it must be an object."""
    value = read_document(path)
    if not isinstance(value, dict):
        raise CliError(f"{path} must hold a config object, not {type(value).__name__}")
    return value


def replace_patch(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``current`` into exactly ``wanted``: keys it lacks are
    sent as null (removed), nested objects are patched the same way."""
    patch: dict[str, Any] = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        old = current.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            nested = replace_patch(old, value)
            if nested:
                patch[key] = nested
        elif value != old or key not in current:
            patch[key] = value
    return patch
