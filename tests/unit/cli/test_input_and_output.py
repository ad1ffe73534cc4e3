"""The CLI's pure parts: --set and --file into a merge patch, volume specs, table cells."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from moorage.cli import output
from moorage.cli.apps import parse_port
from moorage.cli.client import CliError
from moorage.cli.config_input import dotted_patch, replace_patch
from moorage.cli.env import read_env_file
from moorage.cli.output import cell, human_size
from moorage.cli.volumes import parse_spec
from moorage.sources.image.config import ImageConfig


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


IMAGE_SCHEMA = ImageConfig.model_json_schema()  # what GET /api/kinds serves for `image`


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("image=12345", {"image": "12345"}),  # the key takes text: a number stays text
        ("image=true", {"image": "true"}),
        ("image=null", {"image": None}),  # null still removes
        ("stop_timeout=30", {"stop_timeout": 30}),
        ("init=false", {"init": False}),
        ("health.http=/", {"health": {"http": "/"}}),
        ("health.timeout_seconds=5", {"health": {"timeout_seconds": 5}}),  # number takes int
        ("health.port=8080", {"health": {"port": 8080}}),
        ('command=["sh", "-c"]', {"command": ["sh", "-c"]}),
        ("registry_auth.username=007", {"registry_auth": {"username": "007"}}),
        ("unknown=1", {"unknown": 1}),  # the schema is silent: any JSON
    ],
)
def test_values_are_read_as_the_type_the_kind_takes_at_that_key(
    assignment: str, expected: dict[str, Any]
) -> None:
    assert dotted_patch([assignment], schema=IMAGE_SCHEMA) == expected


CURRENT = {
    "image": "web:1",
    "command": ["httpd", "-f", "-p", "8080"],
    "ports": [{"container": 8080}, {"container": 9090, "host": 19090}],
}


@pytest.mark.parametrize(
    ("assignments", "expected"),
    [
        (["command[3]=9000"], {"command": ["httpd", "-f", "-p", "9000"]}),  # text item
        (["command.0=busybox"], {"command": ["busybox", "-f", "-p", "8080"]}),
        (["command[4]=-v"], {"command": ["httpd", "-f", "-p", "8080", "-v"]}),  # appends
        (["command[1]=null"], {"command": ["httpd", "-p", "8080"]}),  # removes the item
        (
            ["ports[1].host=29090", "ports[0].protocol=udp"],
            {
                "ports": [
                    {"container": 8080, "protocol": "udp"},
                    {"container": 9090, "host": 29090},
                ]
            },
        ),
        (
            ["image=web:2", "command[0]=sh"],
            {"image": "web:2", "command": ["sh", "-f", "-p", "8080"]},
        ),
    ],
)
def test_an_index_reaches_into_a_list_and_the_patch_carries_the_whole_list(
    assignments: list[str], expected: dict[str, Any]
) -> None:
    before = copy.deepcopy(CURRENT)
    assert dotted_patch(assignments, current=CURRENT, schema=IMAGE_SCHEMA) == expected
    assert before == CURRENT  # the caller's config is not changed


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["command[9]=x"], "the list has 4 items"),
        (["image[0]=x"], "'image' is not a list"),
        (["ports[5].host=1"], "no item 5"),
        (["command=[]", "command[0]=x"], "set both whole and by item"),
        (["[0]=x"], "dotted KEY"),
        (["0=x"], "starts with a name"),
    ],
)
def test_a_bad_index_is_a_clear_error(assignments: list[str], message: str) -> None:
    with pytest.raises(CliError, match=re.escape(message)):
        dotted_patch(assignments, current=CURRENT, schema=IMAGE_SCHEMA)


def test_an_index_without_the_current_config_is_refused() -> None:
    with pytest.raises(CliError, match="needs the workload's current config"):
        dotted_patch(["command[0]=x"])


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


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080", {"container": 8080}),
        ("18080:8080", {"container": 8080, "host": 18080}),
        ("53/udp", {"container": 53, "protocol": "udp"}),
        ("1053:53/udp", {"container": 53, "host": 1053, "protocol": "udp"}),
    ],
)
def test_port_flags_read_as_docker_run_p(spec: str, expected: dict[str, Any]) -> None:
    assert parse_port(spec) == expected
    assert ImageConfig.model_validate({"image": "x", "ports": [expected]})  # the kind takes it


@pytest.mark.parametrize(
    "spec", ["", "http", "0", "65536", "8080/sctp", "a:8080", ":8080", "1:2:3", "-1", "80 80"]
)
def test_a_bad_port_flag_is_a_clear_error(spec: str) -> None:
    with pytest.raises(CliError, match="--port takes PORT or HOST:PORT"):
        parse_port(spec)


@pytest.mark.parametrize("width", [30, 40, 60, 100, 200])
def test_a_table_never_squeezes_a_column_out_of_sight(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At any width every column's whole value can be read: as a table where it fits
    with whole ids, else as records."""
    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=width))
    rows = [
        {"id": "wl_0123456789abcdef", "name": "shop-frontend", "status": "running"},
        {"id": "wl_fedcba9876543210", "name": "db", "status": "never_deployed"},
    ]
    output.table(rows, ["id", "name", "status"], empty="none")
    text = out.getvalue()
    assert all(len(line) <= width for line in text.splitlines())
    for row in rows:
        for value in row.values():
            assert value in text.replace("\n", "") or value in text, (width, text)
    assert "…" not in text


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("A=1\nBROKEN LINE\nB=2\n", "2"),
        ("A=1\n# fine\nnot a pair\nB=2\n'unclosed\n", "3"),
        ("=novalue\n", "1"),
    ],
)
def test_an_env_file_with_a_line_it_cannot_read_sets_nothing(
    tmp_path: Path, text: str, lines: str
) -> None:
    """python-dotenv skipped such a line with a warning naming itself, and the rest was
    set (exit 0); the whole file is refused instead, naming the lines, as the UI does."""
    path = tmp_path / "bad.env"
    path.write_text(text)
    with pytest.raises(CliError) as refused:
        read_env_file(path)
    assert f"not KEY=value: {lines}" in str(refused.value)
    assert "nothing was set" in str(refused.value)


def test_a_good_env_file_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "good.env"
    path.write_text('# c\nexport A="x y"\nB=\nC="a\nb"\n')
    assert read_env_file(path) == {"A": "x y", "B": "", "C": "a\nb"}
