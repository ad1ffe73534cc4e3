"""Volume path containment: property-based over arbitrary sources, plus symlink escapes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.errors import InvalidInput
from moorage.volumes.paths import VOLUME_SCOPES, host_path, normalize_target, scope_base

SEGMENTS = st.sampled_from(["a", "b", "..", ".", "", "data", "x y", "\x00", "\\", "ünï", "…"])
SOURCES = st.one_of(
    st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join),
    st.text(max_size=40),
)


def _inside(path: Path, base: Path) -> bool:
    real, real_base = Path(os.path.realpath(path)), Path(os.path.realpath(base))
    return real != real_base and real.is_relative_to(real_base)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "data"
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    for d in (data / "volumes/shop/prod", data / "volumes/shop/_shared", root, outside):
        d.mkdir(parents=True)
    # Symlinks a hostile user could have planted in their own data.
    (data / "volumes/shop/prod/escape").symlink_to(outside)
    (data / "volumes/shop/_shared/escape").symlink_to(outside)
    (root / "escape").symlink_to(outside)
    return {"data": data, "root": root, "outside": outside}


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=SOURCES,
    scope=st.sampled_from(VOLUME_SCOPES),
    prefix=st.sampled_from(["", "/"]),
    through_link=st.booleans(),
)
def test_an_accepted_source_always_resolves_inside_its_base(
    tree: dict[str, Path], source: str, scope: str, prefix: str, through_link: bool
) -> None:
    if through_link:
        source = "escape/" + source
    if scope == "absolute":
        source = f"{tree['root']}/{source}"
    else:
        source = prefix + source
    try:
        path = resolve(tree, scope, source)
    except InvalidInput as exc:
        assert exc.code == "invalid_volume"
        return
    base = tree["root"] if scope == "absolute" else scope_base(tree["data"], "shop", "prod", scope)
    assert _inside(path, base), (scope, source, path)
    assert not _inside(path, tree["outside"]) and Path(os.path.realpath(path)) != tree["outside"]
    assert "\x00" not in str(path) and ".." not in path.parts


def resolve(tree: dict[str, Path], scope: str, source: str) -> Path:
    """``host_path`` of ``source`` for project ``shop``, stage ``prod``, under ``tree``."""
    return host_path(
        data_dir=tree["data"],
        volume_roots=(tree["root"],),
        project="shop",
        stage="prod",
        scope=scope,
        source=source,
    )


@pytest.mark.parametrize(
    ("scope", "source"),
    [
        ("stage", "../other"),
        ("stage", "a/../../x"),
        ("stage", "/etc"),
        ("stage", ""),
        ("stage", "."),
        ("stage", "a\x00b"),
        ("stage", "escape"),
        ("stage", "escape/deeper"),
        ("project", "../prod/a"),
        ("absolute", "relative/path"),
        ("absolute", "/etc/passwd"),
        ("absolute", "ROOT/../outside"),
        ("absolute", "ROOT/escape"),
        ("absolute", "ROOT"),
        ("nonsense", "a"),
    ],
)
def test_escapes_are_refused(tree: dict[str, Path], scope: str, source: str) -> None:
    source = source.replace("ROOT", str(tree["root"]))
    with pytest.raises(InvalidInput):
        resolve(tree, scope, source)


def test_scopes_map_to_their_documented_directories(tree: dict[str, Path]) -> None:
    common = {
        "data_dir": tree["data"],
        "volume_roots": (tree["root"],),
        "project": "shop",
        "stage": "prod",
    }
    assert host_path(scope="stage", source="db", **common) == tree["data"] / "volumes/shop/prod/db"
    assert host_path(scope="project", source="a/b", **common) == (
        tree["data"] / "volumes/shop/_shared/a/b"
    )
    assert host_path(scope="absolute", source=f"{tree['root']}/pg", **common) == tree["root"] / "pg"


def test_absolute_volumes_are_refused_without_roots(tree: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput, match="MOORAGE_VOLUME_ROOTS"):
        host_path(
            data_dir=tree["data"],
            volume_roots=(),
            project="shop",
            stage="prod",
            scope="absolute",
            source=f"{tree['root']}/pg",
        )


@pytest.mark.parametrize("target", ["data", "/", "/a/../b", "/a\x00", ""])
def test_bad_targets_are_refused(target: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_target(target)


def test_targets_are_normalised() -> None:
    assert normalize_target("/var//lib/./pg/") == "/var/lib/pg"


@pytest.mark.parametrize("scope", ["stage", "project", "absolute"])
@pytest.mark.parametrize("error", [FileNotFoundError, NotADirectoryError, OSError])
def test_a_component_swapped_while_it_is_resolved_is_refused_not_an_internal_error(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch, scope: str, error: type[OSError]
) -> None:
    """``realpath`` lstats a component and then reads its link: one exchanged in between
    raises ``OSError`` (run 23 of session 10: "internal error" from a deploy racing
    ``tests/integration/test_volume_pins.py``'s flipper). It is a refusal naming the race."""

    def swapped(_path: object) -> str:
        raise error(22, "Invalid argument")

    monkeypatch.setattr(os.path, "realpath", swapped)
    source = f"{tree['root']}/pg" if scope == "absolute" else "db"
    with pytest.raises(InvalidInput, match="changed while it was checked"):
        resolve(tree, scope, source)
