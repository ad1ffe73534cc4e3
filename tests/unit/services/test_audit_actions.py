"""One list of audit actions: every row Moorage writes names an ``AuditAction``.

mypy holds the typed paths (``audit.record``, ``audit.one_row``, ``guard.change`` take an
``AuditAction``); this walks the source for what types cannot see (a row built by hand,
a bulk insert's dicts, a string where an action goes) and for actions nothing records.
"""

from __future__ import annotations

import ast
from pathlib import Path

from moorage.services.audit import AuditAction
from tests.conftest import REPO

# Where the action goes in each call that takes one (positional index, or ``action=``).
TAKES_ACTION = {("audit", "record"): 2, ("audit", "one_row"): 2, ("guard", "change"): 3}


def is_member(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "AuditAction"
    )


def actions_in(tree: ast.AST) -> tuple[set[str], list[tuple[int, str]]]:
    """(the members named, the places an action is given as something else than a member
    or a variable passing one on)."""
    named: set[str] = set()
    wrong: list[tuple[int, str]] = []

    def check(node: ast.AST, where: ast.AST) -> None:
        if not (is_member(node) or isinstance(node, ast.Name)):
            wrong.append((where.lineno, ast.unparse(where)))

    for node in ast.walk(tree):
        if is_member(node):
            assert isinstance(node, ast.Attribute)
            named.add(node.attr)
        if isinstance(node, ast.Call):
            f = node.func
            name: object = getattr(f, "id", "")
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                name = (f.value.id, f.attr)
            if name == "AuditEntry":
                for kw in node.keywords:
                    if kw.arg == "action" and not (
                        isinstance(kw.value, ast.Call)
                        and getattr(kw.value.func, "id", "") == "str"
                        and isinstance(kw.value.args[0], ast.Name)
                    ):
                        wrong.append((node.lineno, ast.unparse(kw)))
            elif isinstance(name, tuple) and name in TAKES_ACTION:
                index = TAKES_ACTION[name]
                given = [kw.value for kw in node.keywords if kw.arg == "action"]
                if len(node.args) > index:
                    given.append(node.args[index])
                for value in given:
                    check(value, node)
        elif isinstance(node, ast.Dict):  # a row of a bulk insert into audit_log
            row = {
                key.value: value
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant)
            }
            if {"action", "target_type"} <= set(row):
                check(row["action"], node)
    return named, wrong


def scan(root: Path) -> tuple[set[str], list[str]]:
    named: set[str] = set()
    wrong: list[str] = []
    for path in sorted(root.rglob("*.py")):
        found, bad = actions_in(ast.parse(path.read_text()))
        named |= found
        wrong += [f"{path.relative_to(REPO)}:{line}: {what}" for line, what in bad]
    return named, wrong


def test_the_scan_finds_actions_given_as_strings() -> None:
    code = (
        "audit.record(s, actor, 'workload.create', 'workload', wid)\n"
        "guard.change(s, locks, actor, AuditAction.WORKLOAD_DEPLOY, wid)\n"
        "audit.one_row(s, actor, action, 'workload', None)\n"
        "rows = [{'action': 'workload.deploy', 'target_type': 'workload'}]\n"
        "config = {'cron': '0 3 * * *', 'action': 'deploy'}\n"
        "AuditEntry(actor='x', action='user.create')\n"
    )
    named, wrong = actions_in(ast.parse(code))
    assert named == {"WORKLOAD_DEPLOY"}
    assert sorted(line for line, _ in wrong) == [1, 4, 6]


def test_every_action_written_is_a_member_and_every_member_is_written() -> None:
    named, wrong = scan(REPO / "moorage")
    assert wrong == [], "name the action with AuditAction"
    assert set(named) - {m.name for m in AuditAction} == set()
    unused = {m.name for m in AuditAction} - named
    assert unused == set(), "an action nothing records: remove it, or record it"


def test_actions_are_target_dot_verb() -> None:
    for action in AuditAction:
        target, _, verb = action.value.partition(".")
        assert target and verb, action
        assert action.name == action.value.upper().replace(".", "_"), action
