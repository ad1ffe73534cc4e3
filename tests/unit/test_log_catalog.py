"""Every line the deploy path and the capture's quiesce step write has a template in
``moorage.log_catalog``, and every UI language holds every template.

The source is read, not run: each call that writes a log line (``ctx.log(...)``,
``log(...)``, ``line(...)``, ``stamped(...)``) with a literal or f-string argument is
reduced to its literal text with ``{}`` for each value, and that shape must be a
template's. An argument ``a + (b if x else "")`` gives both lines it can write.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from moorage.log_catalog import TEMPLATES

REPO = Path(__file__).resolve().parents[2]
I18N = REPO / "web" / "src" / "lib" / "i18n"
WRITERS = [
    "moorage/deployer/queue.py",
    "moorage/services/deployment_runs.py",
    "moorage/snapshots/quiesce.py",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "moorage" / "sources").rglob("*.py")),
]
LOGGING_CALLS = {"log", "line", "stamped"}
REASONS = {"DeployFailed"}
"""A deploy's reason for failing: the deployment's ``error`` and its "deploy failed:" line."""
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def shape(template: str) -> str:
    return PLACEHOLDER.sub("{}", template)


def _variants(node: ast.expr) -> list[str] | None:
    """The shapes an argument can take, or None when it is not text written in place."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value.replace("{", "{{").replace("}", "}}")]
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                text += str(part.value)
            else:
                text += "{}"
        return [text]
    if isinstance(node, ast.IfExp):
        body, orelse = _variants(node.body), _variants(node.orelse)
        return None if body is None or orelse is None else body + orelse
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _variants(node.left), _variants(node.right)
        if left is None or right is None:
            return None
        return [a + b for a in left for b in right]
    return None


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in LOGGING_CALLS or func.id in REASONS
    return isinstance(func, ast.Attribute) and func.attr == "log"


def written_lines() -> list[tuple[str, int, str]]:
    """(file, line number, shape) of every log line written in place in ``WRITERS``."""
    found = []
    for name in WRITERS:
        tree = ast.parse((REPO / name).read_text(), filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_log_call(node) and len(node.args) == 1:
                for text in _variants(node.args[0]) or []:
                    found.append((name, node.lineno, text.rstrip("\n")))
    return found


def test_the_scan_finds_the_lines_it_is_meant_to_find() -> None:
    shapes = {s for _, _, s in written_lines()}
    assert {"deploy succeeded", "started {}", "pulling {} as {}", "pulling {}"} <= shapes
    assert "health: still waiting, {} s of {} s ({})" in shapes


def test_every_written_line_has_a_template() -> None:
    known = {shape(t) for t in TEMPLATES.values()}
    missing = [f"{f}:{n}: {s!r}" for f, n, s in written_lines() if s not in known]
    assert missing == [], "add these to moorage/log_catalog.py and the UI's languages"


def test_templates_are_distinct_and_name_their_values() -> None:
    shapes = [shape(t) for t in TEMPLATES.values()]
    assert len(set(shapes)) == len(shapes)
    for code, template in TEMPLATES.items():
        names = PLACEHOLDER.findall(template)
        assert len(set(names)) == len(names), code
        assert re.fullmatch(r"[a-z_]+", code), code


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_ui_language_holds_every_template(lang: str) -> None:
    lines = json.loads((I18N / f"{lang}.json").read_text())["loglines"]
    assert sorted(lines) == sorted(TEMPLATES)
    for code, template in TEMPLATES.items():
        assert sorted(PLACEHOLDER.findall(lines[code])) == sorted(PLACEHOLDER.findall(template)), (
            f"{lang}.json loglines.{code}"
        )
    if lang == "en":
        assert lines == TEMPLATES  # the UI reads lines by the English text
