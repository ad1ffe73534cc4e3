"""The shared parts of every body: ``Body`` (a request: unknown fields refused, every
string checked by its text rule) and ``ErrorOut`` (every error answer)."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from moorage.text import LINE, MULTILINE, OPAQUE, SCHEMA_KEY, TextRule, describe, first_refused

MULTILINE_TEXT: dict[str, Any] = {SCHEMA_KEY: MULTILINE.value}
"""``json_schema_extra`` of a field whose text may span lines (see ``moorage/text.py``)."""
OPAQUE_TEXT: dict[str, Any] = {SCHEMA_KEY: OPAQUE.value}
"""``json_schema_extra`` of a field that is data handed on byte for byte."""


class Body(BaseModel):
    """A request body: unknown fields are an error, so typos never pass silently; every
    string in it (keys too, at any depth) passes its field's text rule (``moorage/text.py``)
    before anything stores it: 422 ``invalid_text``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_unknown(cls, data: Any) -> Any:
        """Many unknown keys are one problem, not one per key (``extra="forbid"`` makes an
        error for each, and 100,000 of them took a second to validate and answer)."""
        if isinstance(data, dict) and len(data) > len(cls.model_fields) + MAX_UNKNOWN:
            unknown = [str(k) for k in data if k not in cls.model_fields]
            if len(unknown) > MAX_UNKNOWN:
                raise PydanticCustomError(
                    "too_many_fields",
                    "{count} unknown fields (the first: {first}); this body takes {known}",
                    {
                        "count": len(unknown),
                        "first": ", ".join(repr(k[:40]) for k in unknown[:3]),
                        "known": ", ".join(cls.model_fields) or "no fields",
                    },
                )
        return data

    @model_validator(mode="after")
    def _plain_text(self) -> Self:
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            rule = TextRule(str(extra.get(SCHEMA_KEY, LINE))) if isinstance(extra, dict) else LINE
            try:
                tree = _tree(getattr(self, name))
            except _TooDeep:
                raise PydanticCustomError(
                    "nested_too_deep",
                    "{field} nests arrays and objects deeper than {max_depth} levels",
                    {"field": name, "max_depth": MAX_DEPTH},
                ) from None
            found = first_refused(tree, rule, name)
            if found is not None:
                where, char = found
                raise PydanticCustomError(
                    "invalid_text",
                    "holds {char}, which this field does not take",
                    {"where": where, "char": describe(char)},
                )
        return self


MAX_UNKNOWN = 8
"""Unknown keys in one body object listed one by one; past it, one problem says how many."""
MAX_DEPTH = 64
"""Arrays and objects inside each other in one field of a body: no field takes more
than a few, and every walk of a value (this one, ``first_refused``, an error answer
quoting the input) recurses per level; a 500-deep ``config`` was a 500 and a
3,000-line traceback (issue 12)."""


class _TooDeep(Exception):
    pass


def _tree(value: Any, depth: int = 0) -> Any:
    """``value`` as the JSON-like tree ``first_refused`` walks: a nested ``Body`` has
    checked itself (None here); any other model, such as a read-only part sent back
    with a body, is walked as its fields, so no string in a request escapes the rule.
    Raises ``_TooDeep`` past ``MAX_DEPTH`` levels."""
    if isinstance(value, Body):
        return None
    if isinstance(value, BaseModel | dict | list | tuple) and depth >= MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, BaseModel):
        return {k: _tree(v, depth + 1) for k, v in value}
    if isinstance(value, dict):
        return {k: _tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tree(v, depth + 1) for v in value]
    return value


class ErrorDetail(BaseModel):
    code: str = Field(description="Which refusal: a code of ``errors.CODES``")
    message: str = Field(description="What went wrong and what to do, for a person")
    details: Any = Field(
        default=None,
        description="More, by code: the fields of invalid_request, the other workload of a "
        "clash, retry_after, ...",
    )


class ErrorOut(BaseModel):
    """Every error answer (``errors.error_body``); each route declares its statuses."""

    error: ErrorDetail
