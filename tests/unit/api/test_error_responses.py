"""Every route declares its error answers in the OpenAPI document, in the one error shape.

What a route must declare is worked out here from the document itself and from the role
matrix the auth tests hold the server to (``MIN_ROLE``), not from the code that declares
them (``api/errors.declare``), so a route that loses a declaration fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from moorage.api.app import openapi_document
from moorage.errors import CODES
from tests.api.test_auth_matrix import MIN_ROLE, MUTATING, PUBLIC

ERROR_OUT = {"$ref": "#/components/schemas/ErrorOut"}
WORKLOAD = "/api/workloads/{workload_id}"
# Answers a route gives by what it does, beyond its shape; the lock of a workload
# (``workload_busy``) is checked for every change of one below.
MORE = {
    ("POST", "/api/session"): {401, 429, 503},  # bad_credentials, login_backoff, busy
    ("POST", "/hooks/{token}"): {401, 413, 429},  # bad_signature, the body cap, rate_limited
    ("POST", "/api/projects"): {409},  # duplicate
    ("POST", "/api/users"): {409},
    ("POST", "/api/triggers"): {409},
    ("POST", "/api/workloads"): {409},
    ("DELETE", "/api/projects/{slug}"): {409},  # project_not_empty
    ("DELETE", "/api/users/{user_id}"): {409},  # last_admin, own_account
    ("POST", "/api/tokens"): {409},  # token_limit
    ("POST", f"{WORKLOAD}/snapshots/{{snapshot_id}}/restore"): {428},  # confirmation_required
    ("POST", f"{WORKLOAD}/snapshots/import"): {413},  # the archive's cap
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi_document()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]


def expected(method: str, path: str, op: dict[str, Any]) -> set[int]:
    role = MIN_ROLE[(method, path)]
    statuses = set(MORE.get((method, path), set()))
    if role is not PUBLIC:
        statuses.add(401)
        if role != "viewer" or method in MUTATING:
            statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if op.get("parameters") or "requestBody" in op:
        statuses.add(422)
    if "requestBody" in op:
        statuses.add(413)
    if method in MUTATING and path.startswith(WORKLOAD):
        statuses.add(409)  # the workload's lock stayed taken: workload_busy
    return statuses


def test_every_route_is_in_the_role_matrix(doc: dict[str, Any]) -> None:
    routes = {(method, path) for method, path, _ in operations(doc)}
    assert routes == set(MIN_ROLE)


def test_every_route_declares_its_error_answers(doc: dict[str, Any]) -> None:
    missing = {}
    for method, path, op in operations(doc):
        declared = {int(s) for s in op["responses"] if s[0] in "45"}
        lacking = expected(method, path, op) - declared
        if lacking:
            missing[f"{method} {path}"] = sorted(lacking)
    assert missing == {}, "declare them with responses=errors.responses(...)"


def test_every_error_answer_is_in_the_error_shape(doc: dict[str, Any]) -> None:
    statuses = {declared.status for declared in CODES.values()}
    for method, path, op in operations(doc):
        for status, answer in op["responses"].items():
            if status[0] not in "45":
                continue
            assert int(status) in statuses, f"{method} {path}: no code answers {status}"
            assert answer["content"]["application/json"]["schema"] == ERROR_OUT, (method, path)
            assert re.search(r"\S", answer["description"]), (method, path, status)


def test_the_document_has_no_other_error_shape(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]
    error = doc["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["error"]


def test_the_expectations_can_fail(doc: dict[str, Any]) -> None:
    """A route without declarations would be caught: the expectation is not empty."""
    method, path = "PUT", f"{WORKLOAD}/env"
    op = doc["paths"][path]["put"]
    assert expected(method, path, op) == {401, 403, 404, 409, 413, 422}
