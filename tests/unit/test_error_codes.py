"""Error codes are declared once, in ``errors.CODES``, with the status they are answered with.

The source is walked with ``ast``: every ``code="..."`` given to an error class, every code
an answer is built with (``error_body``, ``send_error``) and every class's own code must be
in the registry, with the status ``api/errors.py`` answers for that class; and nothing is
registered that nothing answers.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from moorage import errors
from moorage.api.errors import _HTTP_CODES, status_for
from moorage.errors import CODES, MoorageError
from tests.conftest import REPO

CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if inspect.isclass(cls) and issubclass(cls, MoorageError)
}
# Known, kept as they are (behaviour stays): the download of a snapshot without an archive
# answers 404 ``not_ready``; a restore of one answers 409 with the same code.
ANSWERED_OTHERWISE = {("not_ready", "NotFound")}


def status_of(cls: type[MoorageError]) -> int:
    return status_for(cls.__new__(cls))


def raised_codes(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, code, callee) for every call given a constant code: ``X(..., code="c")``,
    ``error_body("c", ...)``, ``send_error(send, status, "c", ...)``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        for kw in node.keywords:
            if kw.arg == "code" and isinstance(kw.value, ast.Constant):
                found.append((node.lineno, str(kw.value.value), callee))
        at = {"error_body": 0, "send_error": 2}.get(callee)
        if at is not None and len(node.args) > at and isinstance(node.args[at], ast.Constant):
            found.append((node.lineno, str(node.args[at].value), callee))
    return found


def sources() -> list[tuple[Path, ast.AST]]:
    root = REPO / "moorage"
    return [(p, ast.parse(p.read_text())) for p in sorted(root.rglob("*.py"))]


def test_the_scan_finds_codes() -> None:
    code = (
        "raise Conflict('x', code='workload_busy')\n"
        "JSONResponse(error_body('ui_not_built', 'no UI'))\n"
        "await send_error(send, 413, 'payload_too_large', 'big')\n"
        "f(code=code)\n"
    )
    assert sorted(raised_codes(ast.parse(code))) == [
        (1, "workload_busy", "Conflict"),
        (2, "ui_not_built", "error_body"),
        (3, "payload_too_large", "send_error"),
    ]


def test_every_code_raised_is_registered_with_the_status_it_is_answered_with() -> None:
    unregistered, wrong_status = [], []
    for path, tree in sources():
        where = path.relative_to(REPO)
        for line, code, callee in raised_codes(tree):
            if code not in CODES:
                unregistered.append(f"{where}:{line}: {code}")
            elif callee in CLASSES and (code, callee) not in ANSWERED_OTHERWISE:
                answered = status_of(CLASSES[callee])
                if answered != CODES[code].status:
                    wrong_status.append(f"{where}:{line}: {callee} answers {code} {answered}")
    assert unregistered == [], "declare these codes in errors.CODES"
    assert wrong_status == [], "errors.CODES declares another status for these"


def test_the_known_exceptions_are_still_there() -> None:
    """An exception from the rule that is no longer needed goes from the list."""
    seen = {(code, callee) for _, tree in sources() for _, code, callee in raised_codes(tree)}
    assert ANSWERED_OTHERWISE <= seen


def test_every_class_code_is_registered_with_its_status() -> None:
    for name, cls in CLASSES.items():
        assert cls.code in CODES, name
        assert CODES[cls.code].status == status_of(cls), name


def test_the_http_layer_codes_are_registered_with_their_status() -> None:
    for status, code in _HTTP_CODES.items():
        assert CODES[code].status == status


def test_nothing_is_registered_that_nothing_answers() -> None:
    strings = {
        node.value
        for path, tree in sources()
        if path.name != "errors.py" or path.parent.name != "moorage"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    class_codes = {cls.code for cls in CLASSES.values()}
    assert set(CODES) - strings - class_codes == set()


def test_every_code_has_a_meaning() -> None:
    for code, declared in CODES.items():
        assert code.isidentifier() and code == code.lower(), code
        assert declared.meaning and "\n" not in declared.meaning, code
        assert 400 <= declared.status < 600, code
