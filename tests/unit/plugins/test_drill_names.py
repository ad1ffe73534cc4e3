"""A drill's Docker names (network, Compose project, containers) are a name space no
workload reaches: a compose workload named after a drill's id, in a project ``drill``
and a stage ``dr``, once ran Compose under the drill's project (helper 36), where
``up --remove-orphans`` or ``volumes_from`` could reach the sandbox of a workload that
holds host powers. The kind: every split of a drill's name into a project, a stage and
a workload name, and every name Moorage derives for a workload."""

from __future__ import annotations

import itertools

import pytest

from moorage.plugins.spec import Sandbox, drill_prefix
from moorage.sources.compose.deploy import project_name
from moorage.sources.compose.sandbox import project as sandbox_project
from moorage.sources.stage import network_name

DRILL_IDS = ["dr_0123456789abcdef", "dr_ffffffffffffffff", "DR_AbC", "dr-x_y"]


def _slugs(text: str) -> list[str]:
    """Every way to cut ``text`` into three non-empty pieces (project, stage, name)."""
    cuts = itertools.combinations(range(1, len(text)), 2)
    return [f"{text[:a]}|{text[a:b]}|{text[b:]}" for a, b in cuts]


@pytest.mark.parametrize("drill_id", DRILL_IDS)
def test_no_workload_slot_makes_a_drills_names(drill_id: str) -> None:
    sandbox = Sandbox(id=drill_id, network=drill_prefix(drill_id), labels={}, volumes=())
    drill_names = {
        drill_prefix(drill_id),
        sandbox_project(sandbox),
        sandbox.name(),
        sandbox.name("web"),
    }
    assert all(not name.startswith("moorage_") for name in drill_names)
    # What a workload could be called, cut from the drill's own names.
    for name in drill_names:
        body = name.removeprefix("moorage-").removeprefix("moorage_")
        for cut in _slugs(body.replace("_", "-"))[:200]:
            project, stage, workload = cut.split("|")
            made = {project_name(project, stage, workload), network_name(project, stage)}
            assert made.isdisjoint(drill_names), (cut, made)
            assert all(m.startswith("moorage_") for m in made)
