"""``ProgramText`` (``moorage/api/schemas/output.py``): an answer's field that may hold
program output is revealed to an operator, redacted for a viewer and for a route that
named no reader, and FastAPI's second validation of a returned model, without a
context, changes neither form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from moorage.api.schemas import DeploymentOut, RecoveryPointOut, RestoreOut, SnapshotOut
from moorage.api.schemas.output import read_as
from moorage.program_output import HIDDEN, marked
from moorage.security.roles import Actor

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ERROR = f"the container exited (exit code 3); its last output:\n{marked('hunter2')}"
LOG = f"10:00:00 deploy failed: {ERROR}\n"


def _actor(role: str) -> Actor:
    return Actor(user_id="u", username=role, role=role, via="token")


def _deployment() -> dict[str, Any]:
    return {
        "id": "dp_1",
        "workload_id": "wl_1",
        "status": "failed",
        "reason": "manual",
        "artifact": {},
        "error": ERROR,
        "log": LOG,
        "created_at": NOW,
        "started_at": NOW,
        "finished_at": NOW,
    }


def _snapshot() -> dict[str, Any]:
    return {
        "id": "sn_1",
        "workload_id": "wl_1",
        "origin": "manual",
        "mode": "none",
        "status": "failed",
        "volumes": [],
        "size": 0,
        "sha256": "",
        "progress_bytes": 0,
        "total_bytes": 0,
        "error": ERROR,
        "warnings": [ERROR, "plain"],
        "log": LOG,
        "manifest": {},
        "created_at": NOW,
        "finished_at": NOW,
    }


def _restore() -> dict[str, Any]:
    return {
        "id": "rs_1",
        "workload_id": "wl_1",
        "snapshot_id": "sn_1",
        "status": "succeeded",
        "phase": "done",
        "volumes": [],
        "progress_bytes": 0,
        "total_bytes": 0,
        "swap": "",
        "error": ERROR,
        "pre_restore_snapshot_id": None,
        "kept_paths": [],
        "kept_reason": None,
        "created_at": NOW,
        "finished_at": NOW,
    }


def _point() -> dict[str, Any]:
    return {
        "id": "rp_1",
        "stage": "production",
        "mode": "none",
        "status": "failed",
        "items": [],
        "skipped": [],
        "error": f"w: {ERROR}",
        "created_at": NOW,
        "finished_at": NOW,
        "restore_status": "",
        "restores": [],
        "restore_error": ERROR,
        "restored_at": None,
    }


@pytest.mark.parametrize(
    ("model", "row"),
    [
        (DeploymentOut, _deployment()),
        (SnapshotOut, _snapshot()),
        (RestoreOut, _restore()),
        (RecoveryPointOut, _point()),
    ],
)
def test_a_viewer_or_no_reader_gets_none_of_the_output_an_operator_all(
    model: Any, row: dict[str, Any]
) -> None:
    for context in (read_as(_actor("viewer")), None, {}, {"reader": "admin"}):
        seen = model.model_validate(row, context=context)
        text = seen.model_dump_json()
        assert "hunter2" not in text and HIDDEN in text
        assert model.model_validate(seen.model_dump()) == seen  # FastAPI's second pass
    for role in ("operator", "admin"):
        theirs = model.model_validate(row, context=read_as(_actor(role)))
        text = theirs.model_dump_json()
        assert "its last output:\\nhunter2" in text and HIDDEN not in text
        assert model.model_validate(theirs.model_dump()) == theirs


def test_the_document_still_says_string() -> None:
    schema = DeploymentOut.model_json_schema()
    assert schema["properties"]["log"] == {"title": "Log", "type": "string"}
    assert SnapshotOut.model_json_schema()["properties"]["warnings"]["items"] == {"type": "string"}
