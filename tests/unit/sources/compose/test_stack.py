"""``sources.compose.stack``: the named volumes a file keeps to itself, and the binds of
Moorage's volumes in the override (issue 16, SPEC section 10)."""

from __future__ import annotations

from pathlib import Path

import yaml

from moorage.plugins.spec import UncoveredVolume, VolumeMount
from moorage.sources.compose.deploy import override_text
from moorage.sources.compose.stack import binds, labelled_volumes, service_names, uncovered


def test_uncovered_lists_named_volumes_with_their_services() -> None:
    model = {
        "services": {
            "db": {"volumes": ["pgdata:/var/lib/postgresql/data", "/etc/x:/x", "./rel:/r"]},
            "web": {
                "volumes": [
                    {"type": "volume", "source": "pgdata", "target": "/p"},
                    {"type": "bind", "source": "/srv", "target": "/srv"},
                    {"type": "volume", "target": "/anonymous"},
                    "/only-a-target",
                ]
            },
            "odd": "not a mapping",
        },
        "volumes": {"pgdata": None, "unused": {"external": True}},
    }
    assert uncovered(model) == [
        UncoveredVolume("pgdata", ("db", "web")),
        UncoveredVolume("unused", ()),
    ]
    assert service_names(model) == ["db", "web", "odd"]
    assert uncovered({}) == [] and service_names({"services": []}) == []


def _mount(name: str, service: str | None, read_only: bool = False) -> VolumeMount:
    return VolumeMount(name, "stage", Path(f"/data/{name}"), f"/{name}", read_only, service=service)


def test_binds_fail_on_a_missing_path_in_both_compose_versions() -> None:
    mounts = [_mount("a", "db"), _mount("b", "db", True), _mount("c", "web"), _mount("d", None)]
    v1 = binds(mounts, v2=False)
    assert v1 == {
        "db": [
            {"type": "bind", "source": "/data/a", "target": "/a", "read_only": False},
            {"type": "bind", "source": "/data/b", "target": "/b", "read_only": True},
        ],
        "web": [{"type": "bind", "source": "/data/c", "target": "/c", "read_only": False}],
    }
    v2 = binds(mounts, v2=True)
    assert all(e["bind"] == {"create_host_path": False} for es in v2.values() for e in es)
    # In the override, on the named service only, read back as written.
    text = override_text(["db", "web", "side"], set(), {"l": "1"}, {}, {}, v2)
    doc = yaml.safe_load(text)
    assert doc["services"]["db"]["volumes"] == v2["db"]
    assert doc["services"]["web"]["volumes"] == v2["web"]
    assert "volumes" not in doc["services"]["side"]


def test_named_volumes_the_project_creates_carry_moorages_labels() -> None:
    """MOORAGE_CONTAINER_LABELS on every named volume the project creates, never on an
    external one (issue 12). Compose v2 merges an override's volume into the file's; v1
    replaces it whole, so v1's entry is the file's own, its labels kept."""
    model = {
        "volumes": {
            "cache": {"driver": "local", "labels": {"own": "mine", "moorage.test": "old"}},
            "plain": None,
            "named": {"name": "fixed-$name"},
            "ext": {"external": True},
            "legacy": {"external": {"name": "other"}},
        }
    }
    ours = {"moorage.test": "run-1"}
    assert labelled_volumes(model, ours, v2=True) == {
        "cache": {"labels": ours},
        "plain": {"labels": ours},
        "named": {"labels": ours},
    }
    assert labelled_volumes(model, ours, v2=False) == {
        "cache": {"driver": "local", "labels": {"own": "mine", "moorage.test": "run-1"}},
        "plain": {"labels": ours},
        "named": {"name": "fixed-$name", "labels": ours},
    }
    assert labelled_volumes(model, {}, v2=False) == {}  # no labels: the file's as it is
    assert labelled_volumes({"volumes": None}, ours, v2=True) == {}
    # In the override, read back as written ($ escaped, so a name is never interpolated).
    named = labelled_volumes(model, ours, v2=False)
    text = override_text(["web"], set(), {"l": "1"}, {}, ours, None, named)
    doc = yaml.safe_load(text)
    assert doc["volumes"]["named"] == {"name": "fixed-$$name", "labels": ours}
    assert doc["volumes"]["cache"] == named["cache"]
    assert "volumes" not in yaml.safe_load(override_text(["web"], set(), {}, {}, {}))
