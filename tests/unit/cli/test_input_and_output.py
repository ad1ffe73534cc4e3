"""The CLI's pure parts: --set and --file into a merge patch, volume specs, table cells."""

from __future__ import annotations

import pytest

from moorage.cli.client import CliError
from moorage.cli.config_input import dotted_patch, replace_patch
from moorage.cli.output import cell, human_size
from moorage.cli.volumes import parse_spec


def test_dotted_keys_nest_and_values_parse_as_json_or_stay_text() -> None:
    patch = dotted_patch(
        ["image=nginx:1.27", "health.http=/", "health.timeout_seconds=null", "ports=[]", "x=1.5"]
    )
    assert patch == {
        "image": "nginx:1.27",
        "health": {"http": "/", "timeout_seconds": None},
        "ports": [],
        "x": 1.5,
    }
    assert dotted_patch(['tag="1.27"']) == {"tag": "1.27"}  # quoted: text
    for bad in ("novalue", "=x", "a..b=1"):
        with pytest.raises(CliError, match="KEY=VALUE"):
            dotted_patch([bad])
    with pytest.raises(CliError, match="set to a value above"):
        dotted_patch(["a=1", "a.b=2"])


def test_replace_patch_turns_the_current_config_into_exactly_the_wanted_one() -> None:
    current = {"image": "a:1", "health": {"http": "/", "timeout_seconds": 5}, "init": True}
    wanted = {"image": "a:2", "health": {"http": "/"}, "command": ["x"]}
    patch = replace_patch(current, wanted)
    assert patch == {
        "image": "a:2",
        "health": {"timeout_seconds": None},
        "init": None,
        "command": ["x"],
    }
    assert replace_patch(wanted, wanted) == {}


def test_volume_specs() -> None:
    assert parse_spec("data:stage:web/data:/var/lib/web") == {
        "name": "data", "scope": "stage", "source": "web/data", "target": "/var/lib/web",
    }  # fmt: skip
    assert parse_spec("u:project:u:/u:ro:shared") == {
        "name": "u", "scope": "project", "source": "u", "target": "/u",
        "read_only": True, "shared": True,
    }  # fmt: skip
    for bad in ("data:stage:web", "data::web:/x", "d:stage:s:/t:rw"):
        with pytest.raises(CliError):
            parse_spec(bad)


def test_sizes_and_times_read_as_people_write_them() -> None:
    assert [human_size(n) for n in (None, 0, 1023, 1536, 3_002_806, 5 * 1024**3)] == [
        "", "0 B", "1023 B", "1.5 KiB", "2.9 MiB", "5.0 GiB",
    ]  # fmt: skip
    assert cell("2026-12-01T02:11:37.123456Z") == "2026-12-01 02:11:37"
    assert cell("2026-12-01T02:11:37+00:00") == "2026-12-01 02:11:37"
    assert cell("2026-12-01T02:11:37") == "2026-12-01T02:11:37"  # no zone: left as sent
    assert cell(None) == "" and cell(3) == "3"
