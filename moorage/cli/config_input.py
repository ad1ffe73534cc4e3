"""A workload's config as people type it: ``--set a.b=value``, a JSON or YAML file.

Pure functions (no HTTP): parse the input and turn it into the JSON Merge Patch
(RFC 7386) that ``PATCH /api/workloads/{id}`` takes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from moorage.cli.client import CliError


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses as JSON (``8080``, ``true``, ``null``,
    ``["a", "b"]``, ``{"http": "/"}``), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def dotted_patch(assignments: list[str]) -> dict[str, Any]:
    """``["health.http=/", "image=x:1"]`` -> ``{"health": {"http": "/"}, "image": "x:1"}``."""
    patch: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise CliError(f"--set takes KEY=VALUE with a dotted KEY, not {assignment!r}")
        node = patch
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CliError(f"--set {key}: {part!r} is set to a value above")
            node = child
        node[parts[-1]] = parse_value(raw)
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
