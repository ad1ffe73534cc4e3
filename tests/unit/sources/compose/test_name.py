"""The Compose project name: valid for Compose v1 and v2, and one per workload slot."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.names import SLUG_PATTERN
from moorage.sources.compose.deploy import project_name

# What Compose v2 accepts as a project name (v1 accepts a superset).
COMPOSE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SLUGS = st.from_regex(SLUG_PATTERN, fullmatch=True)
# Slugs from a tiny alphabet, so that hyphens line up and near-misses are common.
NEAR_SLUGS = st.from_regex(r"[ab][ab-]{0,5}", fullmatch=True)


def test_plain_slugs_stay_readable() -> None:
    name = project_name("shop", "production", "web")
    assert COMPOSE_NAME.fullmatch(name)
    assert name.startswith("moorage")
    for part in ("shop", "production", "web"):
        assert part in name


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        (("shop", "staging", "api-1"), "moorage_shop_staging_api-1"),
        (("a-b", "c", "d"), "moorage_a-b_c_d"),
        (("shop", "production", "web-"), "moorage_shop_production_web-"),
    ],
)
def test_the_name_is_the_one_running_stacks_were_started_under(
    slot: tuple[str, str, str], expected: str
) -> None:
    # Pinned, not recomputed: Compose finds a running stack only by this name, so a
    # change here would orphan every stack deployed before it.
    assert project_name(*slot) == expected


@pytest.mark.parametrize(
    ("project", "stage", "name"),
    [
        ("Shop", "PRODUCTION", "Web"),
        ("", "", ""),
        ("-", "_", "-"),
        ("a b", "c/d", "e.f"),
        ("café", "ünï", "…"),
        ("🚢", "\x00", "\n\t"),
        ("İstanbul", "straße", "ǅ"),
        ("-leading", "trailing-", "__both__"),
        ("a" * 63, "b" * 63, "c" * 63),
        ("$(rm -rf /)", "../..", "; echo x"),
    ],
)
def test_odd_inputs_still_give_a_name_compose_accepts(project: str, stage: str, name: str) -> None:
    result = project_name(project, stage, name)
    assert COMPOSE_NAME.fullmatch(result), result
    assert result == result.lower()


def test_upper_case_is_folded() -> None:
    assert project_name("Shop", "Production", "WEB") == project_name("shop", "production", "web")


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=70), st.text(max_size=70), st.text(max_size=70))
def test_any_text_gives_a_name_compose_accepts(project: str, stage: str, name: str) -> None:
    assert COMPOSE_NAME.fullmatch(project_name(project, stage, name))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # A hyphen inside a slug must not read as the separator between two slugs.
        (("a-b", "c", "d"), ("a", "b-c", "d")),
        (("shop", "eu-production", "web"), ("shop-eu", "production", "web")),
        (("shop", "production", "api-web"), ("shop", "production-api", "web")),
        # Slugs may end in or repeat a hyphen; those are other workloads, not the same one.
        (("shop", "production", "web-"), ("shop", "production", "web")),
        (("shop", "production", "a--b"), ("shop", "production", "a-b")),
    ],
)
def test_distinct_workloads_get_distinct_projects(
    one: tuple[str, str, str], other: tuple[str, str, str]
) -> None:
    # Compose owns (and `down` / `--remove-orphans` remove) everything under a project name.
    assert project_name(*one) != project_name(*other)


@settings(max_examples=250, derandomize=True)
@given(st.lists(st.tuples(NEAR_SLUGS, NEAR_SLUGS, NEAR_SLUGS), min_size=2, max_size=40))
def test_distinct_slug_triples_never_share_a_project(triples: list[tuple[str, str, str]]) -> None:
    names = {project_name(*t) for t in set(triples)}
    assert len(names) == len(set(triples))


@settings(max_examples=200, derandomize=True)
@given(SLUGS, SLUGS, SLUGS)
def test_valid_slugs_give_a_name_compose_accepts(project: str, stage: str, name: str) -> None:
    assert COMPOSE_NAME.fullmatch(project_name(project, stage, name))
