"""``ProgramText``: a response field that may hold program output (``moorage.program_output``):
a deployment's ``log`` and ``error``; a snapshot's ``log``, ``error`` and ``warnings``; a
drill's ``log`` and ``error``; a restore's ``error``; a recovery point's ``error`` and
``restore_error``.

A route validates such a model with ``context=read_as(actor)``: the field reaches an
operator or an admin with the output in it, anyone else with each run of it replaced by
``program_output.HIDDEN``. Without a reader in the context the field is read as a
viewer's (a route that forgets the context shows an operator too little, never a viewer
too much). FastAPI validates a returned model once more, without a context: both forms
are already free of marks, so that pass changes nothing. The JSON schema stays a string.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

from moorage import program_output
from moorage.security.roles import Actor

READER = "reader"
"""The validation context's key for the actor who reads the answer."""


def read_as(actor: Actor) -> dict[str, Any]:
    """The validation context of an answer ``actor`` reads."""
    return {READER: actor}


def _shown(value: str, info: ValidationInfo) -> str:
    reader = (info.context or {}).get(READER)
    return program_output.shown(value, reader if isinstance(reader, Actor) else None)


ProgramText = Annotated[str, AfterValidator(_shown)]
