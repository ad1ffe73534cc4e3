"""A kind's config, in and out: every source and trigger kind validates, stores and shows
its config model through these.

``validate_config`` turns a pydantic error into Moorage's ``InvalidInput`` naming every
bad field; ``stored_config`` is what the store keeps (secrets in clear);
``public_config`` is what the API shows (every ``SecretStr`` field as ``MASK``).
"""

from __future__ import annotations

import functools
import json
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from moorage.errors import InvalidInput

MASK = "**********"


def validate_config(kind: str, model: type[BaseModel], config: Any) -> BaseModel:
    """Parse ``config`` with ``model``; a failure names every bad field."""
    if not isinstance(config, dict):
        raise InvalidInput(f"config of kind {kind!r} must be a JSON object", code="invalid_config")
    try:
        json.dumps(config, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate from a JSON "\\ud800" escape cannot be stored or sent back.
        raise InvalidInput(
            f"config of kind {kind!r} must be valid Unicode text (no lone surrogates)",
            code="invalid_config",
        ) from None
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in err["loc"]) or "config",
                "message": err["msg"].removeprefix("Value error, "),
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        raise InvalidInput(
            f"invalid config for kind {kind!r}: {summary}", code="invalid_config", details=details
        ) from None


def public_config(model: type[BaseModel], stored: dict[str, Any]) -> dict[str, Any]:
    """The stored config as the API shows it: every SecretStr field comes out masked.

    Works on the stored dict without re-validating it, so reads stay cheap.
    """
    tree = _secret_tree(model)
    return _mask(tree, stored) if tree else stored


def secret_fields(model: type[BaseModel]) -> set[str]:
    """The top-level config keys ``model`` declares as ``SecretStr`` (alone or optional)."""
    return {name for name, where in _secret_tree(model).items() if where is True}


def kept_but_moved(
    model: type[BaseModel], before: Any, patch: Any, after: Any, where: str = ""
) -> list[str]:
    """The paths of stored secrets a merge patch keeps (leaves out, or sends back as
    ``MASK``) in an object whose other fields it changes (a registry login's ``server``
    or ``username``): a stored credential goes only where it went before, so a change of
    where it goes must bring it again. ``before`` and ``after`` are stored configs (the
    patch merged and validated), ``patch`` what the client sent."""
    return _kept_but_moved(_secret_tree(model), before, patch, after, where)


def _kept_but_moved(tree: SecretTree, before: Any, patch: Any, after: Any, where: str) -> list[str]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    sent = patch if isinstance(patch, dict) else {}

    def path(name: str) -> str:
        return f"{where}.{name}" if where else name

    found: list[str] = []
    for name, sub in tree.items():
        if sub is not True:
            found += _kept_but_moved(
                sub, before.get(name), sent.get(name), after.get(name), path(name)
            )
    secrets = {name for name, sub in tree.items() if sub is True}
    kept = sorted(
        name
        for name in secrets
        if before.get(name) is not None
        and after.get(name) == before.get(name)
        and sent.get(name, MASK) == MASK
    )
    moved = [k for k in {*before, *after} - set(tree) if before.get(k) != after.get(k)]
    if kept and moved:
        found += [path(name) for name in kept]
    return found


def stored_config(model: BaseModel) -> dict[str, Any]:
    """The config as the store keeps it: secret fields in clear (never sent out)."""
    revealed: dict[str, Any] = _reveal(model.model_dump(mode="python", exclude_none=True))
    return revealed


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


SecretTree = dict[str, Any]  # field -> True (a secret) or the SecretTree of a nested model


@functools.cache
def _secret_tree(model: type[BaseModel]) -> SecretTree:
    """Where a model keeps its secrets, worked out once per model."""
    tree: SecretTree = {}
    for name, field in model.model_fields.items():
        for member in _members(field.annotation):
            if member is SecretStr:
                tree[name] = True
            elif isinstance(member, type) and issubclass(member, BaseModel):
                if sub := _secret_tree(member):
                    tree[name] = sub
            elif get_origin(member) is list:
                (item,) = get_args(member) or (Any,)
                if isinstance(item, type) and issubclass(item, BaseModel):
                    if sub := _secret_tree(item):
                        tree[name] = sub
    return tree


def _mask(tree: SecretTree, data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for name, sub in tree.items():
        value = out.get(name)
        if value is None:
            continue
        if sub is True:
            out[name] = MASK
        elif isinstance(value, dict):
            out[name] = _mask(sub, value)
        elif isinstance(value, list):
            out[name] = [_mask(sub, v) if isinstance(v, dict) else v for v in value]
    return out
