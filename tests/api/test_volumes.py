"""A workload's volumes: scopes, host paths and the containment rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, unique

SHOWN_ONLY = ("host_path", "problem")


def vol_url(workload: dict[str, Any]) -> str:
    return f"/api/workloads/{workload['id']}/volumes"


def read_volumes(server: Server, workload: dict[str, Any]) -> list[dict[str, Any]]:
    r = server.operator.get(vol_url(workload))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def specs(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A GET answer as a PUT body: ``host_path`` and ``problem`` are shown, never taken."""
    return [{k: v for k, v in item.items() if k not in SHOWN_ONLY} for item in shown]


def refusal(*values: str) -> str:
    """The error a bad volume list gets: a NUL or control character anywhere is refused by
    the text rule every field follows (``invalid_text``), before the volume rules run."""
    controls = any(ord(c) < 32 or ord(c) == 127 for value in values for c in value)
    return "invalid_text" if controls else "invalid_volume"


def vol(name: str, scope: str, source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "scope": scope, "source": source, "target": target, **extra}


@pytest.fixture
def seeded(server: Server, workload: dict[str, Any]) -> dict[str, Any]:
    """A workload that already has one volume, so a refused PUT has something to keep."""
    r = server.operator.put(vol_url(workload), json=[vol("data", "stage", "data", "/data")])
    assert r.status_code == 200, r.text
    return workload


def test_a_new_workload_has_no_volumes(server: Server, workload: dict[str, Any]) -> None:
    assert read_volumes(server, workload) == []


def test_stage_and_project_scopes_map_below_the_data_dir(server: Server, project: str) -> None:
    workload = create_workload(server, project, stage="staging")
    r = server.operator.put(
        vol_url(workload),
        json=[
            vol("db", "stage", "db/main", "/var/lib/db"),
            vol("shared", "project", "uploads", "/srv/uploads", read_only=True),
        ],
    )
    assert r.status_code == 200, r.text
    volumes_dir = server.data_dir / "volumes" / project
    expected = [
        {
            "name": "db",
            "scope": "stage",
            "source": "db/main",
            "target": "/var/lib/db",
            "read_only": False,
            "shared": False,
            "service": None,
            "host_path": str(volumes_dir / "staging" / "db" / "main"),
            "problem": None,
        },
        {
            "name": "shared",
            "scope": "project",
            "source": "uploads",
            "target": "/srv/uploads",
            "read_only": True,
            "shared": False,
            "service": None,
            "host_path": str(volumes_dir / "_shared" / "uploads"),
            "problem": None,
        },
    ]
    assert r.json() == {"items": expected, "not_covered": []}
    assert read_volumes(server, workload) == expected


def test_targets_are_normalized_and_order_is_kept(server: Server, workload: dict[str, Any]) -> None:
    r = server.operator.put(
        vol_url(workload),
        json=[vol("zeta", "stage", "z", "/z//dir/"), vol("alpha", "stage", "./a/", "/a/./b")],
    )
    assert r.status_code == 200, r.text
    shown = read_volumes(server, workload)
    assert [v["name"] for v in shown] == ["zeta", "alpha"]
    assert [v["target"] for v in shown] == ["/z/dir", "/a/b"]


def test_put_replaces_the_whole_list(server: Server, seeded: dict[str, Any]) -> None:
    r = server.operator.put(vol_url(seeded), json=[vol("logs", "stage", "logs", "/logs")])
    assert r.status_code == 200, r.text
    assert [v["name"] for v in read_volumes(server, seeded)] == ["logs"]
    r = server.operator.put(vol_url(seeded), json=[])
    assert r.status_code == 200, r.text
    assert read_volumes(server, seeded) == []


def test_admin_adds_an_absolute_volume(server: Server, workload: dict[str, Any]) -> None:
    source = str(server.volume_root / unique("abs"))
    r = server.admin.put(vol_url(workload), json=[vol("abs", "absolute", source, "/mnt")])
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["host_path"] == source
    assert r.json()["items"][0]["problem"] is None
    assert read_volumes(server, workload) == r.json()["items"]


def test_operator_may_not_add_an_absolute_volume(server: Server, seeded: dict[str, Any]) -> None:
    before = read_volumes(server, seeded)
    source = str(server.volume_root / unique("abs"))
    r = server.operator.put(
        vol_url(seeded), json=[*specs(before), vol("abs", "absolute", source, "/mnt")]
    )
    assert_error(r, 403, "forbidden")
    assert read_volumes(server, seeded) == before


def test_operator_keeps_but_cannot_change_or_remove_an_absolute_volume(
    server: Server, workload: dict[str, Any]
) -> None:
    source = str(server.volume_root / unique("abs"))
    absolute = vol("abs", "absolute", source, "/mnt", read_only=False)
    r = server.admin.put(vol_url(workload), json=[absolute])
    assert r.status_code == 200, r.text

    # Any change of the list is the admin's once it holds one (a volume over /bin changes
    # what runs with the host path), even one that leaves it as it is.
    more = [absolute, vol("data", "stage", "data", "/data")]
    assert_error(server.operator.put(vol_url(workload), json=more), 403, "needs_admin")
    r = server.admin.put(vol_url(workload), json=more)
    assert r.status_code == 200, r.text
    before = read_volumes(server, workload)
    assert [v["name"] for v in before] == ["abs", "data"]

    changed = {**absolute, "read_only": True}
    attempts = [
        [vol("data", "stage", "data", "/data")],
        [changed, vol("data", "stage", "data", "/data")],
        [{**absolute, "source": str(server.volume_root / unique("other"))}],
    ]
    for body in attempts:
        assert_error(server.operator.put(vol_url(workload), json=body), 403, "forbidden")
        assert read_volumes(server, workload) == before


@pytest.mark.parametrize(
    "source",
    [
        "relative/path",
        "/etc",
        "/",
        "{root}",
        "{root}/../escape",
        "{root}/a/../../escape",
        "{root}/a\x00b",
    ],
)
def test_invalid_absolute_source(server: Server, seeded: dict[str, Any], source: str) -> None:
    before = read_volumes(server, seeded)
    source = source.replace("{root}", str(server.volume_root))
    r = server.admin.put(
        vol_url(seeded), json=[*specs(before), vol("abs", "absolute", source, "/mnt")]
    )
    assert_error(r, 422, refusal(source))
    assert read_volumes(server, seeded) == before


def test_absolute_symlink_escaping_the_roots(
    server: Server, seeded: dict[str, Any], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = server.volume_root / unique("link")
    os.symlink(outside, link)
    before = read_volumes(server, seeded)
    for source in (str(link), str(link / "below")):
        r = server.admin.put(
            vol_url(seeded), json=[*specs(before), vol("abs", "absolute", source, "/mnt")]
        )
        assert_error(r, 422, "invalid_volume")
        assert read_volumes(server, seeded) == before


def test_absolute_symlink_staying_inside_the_roots_is_fine(
    server: Server, workload: dict[str, Any]
) -> None:
    inside = server.volume_root / unique("real")
    inside.mkdir()
    link = server.volume_root / unique("link")
    os.symlink(inside, link)
    r = server.admin.put(vol_url(workload), json=[vol("abs", "absolute", str(link), "/mnt")])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("scope", ["stage", "project"])
@pytest.mark.parametrize(
    "source",
    ["..", "../other", "a/../../b", "a/..", "/abs/path", "a\x00b", "", ".", "./", "a\\b", "a\nb"],
)
def test_invalid_relative_source(
    server: Server, seeded: dict[str, Any], scope: str, source: str
) -> None:
    before = read_volumes(server, seeded)
    r = server.operator.put(
        vol_url(seeded), json=[*specs(before), vol("new", scope, source, "/new")]
    )
    assert_error(r, 422, refusal(source))
    assert read_volumes(server, seeded) == before


@pytest.mark.parametrize("scope", ["stage", "project"])
def test_relative_symlink_escape(server: Server, project: str, scope: str, tmp_path: Path) -> None:
    workload = create_workload(server, project, stage="production")
    r = server.operator.put(vol_url(workload), json=[vol("data", "stage", "data", "/data")])
    assert r.status_code == 200, r.text
    base = server.data_dir / "volumes" / project / ("production" if scope == "stage" else "_shared")
    base.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, base / "escape")
    os.symlink(base, base / "itself")
    before = read_volumes(server, workload)
    for source in ("escape", "escape/deeper", "itself"):
        r = server.operator.put(
            vol_url(workload), json=[*specs(before), vol("new", scope, source, "/new")]
        )
        assert_error(r, 422, "invalid_volume")
        assert read_volumes(server, workload) == before


@pytest.mark.parametrize(
    "volumes",
    [
        [vol("same", "stage", "a", "/a"), vol("same", "stage", "b", "/b")],
        [vol("one", "stage", "a", "/data"), vol("two", "project", "b", "/data")],
        [vol("one", "stage", "a", "/data"), vol("two", "stage", "b", "/data/")],
        [vol("one", "stage", "a", "/data"), vol("two", "stage", "b", "//data/.")],
        [vol("rel", "stage", "a", "data")],
        [vol("root", "stage", "a", "/")],
        [vol("dots", "stage", "a", "/srv/../etc")],
        [vol("nul", "stage", "a", "/da\x00ta")],
        [vol("empty", "stage", "a", "")],
        [vol("Upper", "stage", "a", "/a")],
        [vol("", "stage", "a", "/a")],
        [vol("x", "global", "a", "/a")],
        [vol("x", "", "a", "/a")],
    ],
)
def test_invalid_volume_lists(
    server: Server, seeded: dict[str, Any], volumes: list[dict[str, Any]]
) -> None:
    before = read_volumes(server, seeded)
    code = refusal(*(str(value) for v in volumes for value in v.values()))
    assert_error(server.operator.put(vol_url(seeded), json=volumes), 422, code)
    assert read_volumes(server, seeded) == before


@pytest.mark.parametrize(
    "body",
    [
        [{"name": "x", "scope": "stage", "source": "a"}],
        [vol("x", "stage" * 10, "a", "/a")],
        [vol("x", "stage", "a", "/a", read_only="sometimes")],
        {"name": "x"},
    ],
)
def test_malformed_volume_bodies(server: Server, seeded: dict[str, Any], body: Any) -> None:
    before = read_volumes(server, seeded)
    assert_error(server.operator.put(vol_url(seeded), json=body), 422, "invalid_request")
    assert read_volumes(server, seeded) == before


def test_a_get_answer_can_be_put_back_and_host_path_is_never_taken(
    server: Server, seeded: dict[str, Any]
) -> None:
    r = server.operator.put(vol_url(seeded), json=[vol("x", "stage", "a", "/a")])
    assert r.status_code == 200, r.text
    shown = read_volumes(server, seeded)
    forged = [{**v, "host_path": "/etc", "problem": "ignored"} for v in shown]
    r = server.operator.put(vol_url(seeded), json=forged)
    assert r.status_code == 200, r.text
    assert read_volumes(server, seeded) == shown
    assert shown[0]["host_path"] != "/etc"


def test_too_many_volumes(server: Server, seeded: dict[str, Any]) -> None:
    before = read_volumes(server, seeded)
    body = [vol(f"v{i}", "stage", f"s{i}", f"/t{i}") for i in range(65)]
    assert_error(server.operator.put(vol_url(seeded), json=body), 422, "invalid_volume")
    assert read_volumes(server, seeded) == before


def test_volumes_of_unknown_workload_is_404(server: Server) -> None:
    assert_error(server.operator.get("/api/workloads/wl_nope/volumes"), 404, "not_found")
    r = server.operator.put("/api/workloads/wl_nope/volumes", json=[])
    assert_error(r, 404, "not_found")


def test_viewer_cannot_change_volumes(server: Server, seeded: dict[str, Any]) -> None:
    before = read_volumes(server, seeded)
    assert_error(server.viewer.put(vol_url(seeded), json=[]), 403, "forbidden")
    assert read_volumes(server, seeded) == before


def _volumes_of(server: Server, workload: dict[str, Any]) -> list[dict[str, Any]]:
    return specs(read_volumes(server, workload))


@pytest.mark.parametrize(
    ("outer", "inner"),
    [
        (("stage", "{u}"), ("stage", "{u}/inner")),
        (("stage", "{u}/a"), ("stage", "{u}/a/b/c")),
        (("absolute", "{root}/{u}"), ("absolute", "{root}/{u}/inner")),
    ],
)
def test_a_volume_inside_another_workloads_volume_is_refused(
    server: Server, project: str, outer: tuple[str, str], inner: tuple[str, str]
) -> None:
    """Either order, any scope: the second workload is refused and keeps what it had."""
    u = unique("nest")
    fill = {"u": u, "root": str(server.volume_root)}
    (server.volume_root / u / "inner").mkdir(parents=True, exist_ok=True)
    first, second = create_workload(server, project), create_workload(server, project)
    for a, b in ((outer, inner), (inner, outer)):
        a_src, b_src = a[1].format(**fill), b[1].format(**fill)
        ok = server.admin.put(vol_url(first), json=[vol("v", a[0], a_src, "/v")])
        assert ok.status_code == 200, ok.text
        before = _volumes_of(server, second)
        r = server.admin.put(vol_url(second), json=[vol("w", b[0], b_src, "/w")])
        error = assert_error(r, 409, "volume_nested")
        assert first["id"] in error["message"] and first["name"] in error["message"]
        assert _volumes_of(server, second) == before
        assert server.admin.put(vol_url(first), json=[]).status_code == 200


def test_nested_volumes_of_one_workload_are_refused(
    server: Server, workload: dict[str, Any]
) -> None:
    u = unique("nest")
    before = _volumes_of(server, workload)
    r = server.operator.put(
        vol_url(workload),
        json=[vol("outer", "stage", u, "/a"), vol("inner", "stage", f"{u}/x", "/b")],
    )
    assert_error(r, 409, "volume_nested")
    assert _volumes_of(server, workload) == before


def test_siblings_and_name_prefixes_are_not_nested(server: Server, project: str) -> None:
    u = unique("nest")
    first, second = create_workload(server, project), create_workload(server, project)
    assert server.operator.put(vol_url(first), json=[vol("v", "stage", u, "/v")]).status_code == 200
    for source in (f"{u}2", f"{u}-x/y", f"other/{u}"):
        r = server.operator.put(vol_url(second), json=[vol("w", "stage", source, "/w")])
        assert r.status_code == 200, (source, r.text)


def test_nesting_is_judged_after_resolving_symlinks(server: Server, project: str) -> None:
    """A link inside a stage directory that points into another volume is nesting too."""
    u = unique("nest")
    first, second = create_workload(server, project), create_workload(server, project)
    assert server.operator.put(vol_url(first), json=[vol("v", "stage", u, "/v")]).status_code == 200
    base = server.data_dir / "volumes" / project / "production"
    (base / u).mkdir(parents=True, exist_ok=True)
    os.symlink(u, base / f"{u}-alias")
    r = server.operator.put(vol_url(second), json=[vol("w", "stage", f"{u}-alias/sub", "/w")])
    assert_error(r, 409, "volume_nested")
    assert _volumes_of(server, second) == []


# --- sharing a directory between workloads (SPEC section 9) ------------------------------


def audit_of(server: Server, workload: dict[str, Any]) -> list[dict[str, Any]]:
    r = server.admin.get(
        "/api/audit", params={"target_type": "workload", "target_id": workload["id"]}
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def put_volumes(server: Server, workload: dict[str, Any], items: list[dict[str, Any]]) -> Any:
    return server.operator.put(vol_url(workload), json=items)


def test_a_stage_directory_two_workloads_mount_needs_shared_on_both(
    server: Server, project: str
) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project)
    data = vol("data", "stage", "data", "/data")
    assert put_volumes(server, first, [data]).status_code == 200
    kept, audited = read_volumes(server, second), audit_of(server, second)

    for mine in (False, True):  # neither says shared; only this one does
        error = assert_error(
            put_volumes(server, second, [{**data, "shared": mine}]), 409, "volume_in_use"
        )
        assert first["name"] in error["message"] and first["id"] in error["message"]
        assert error["details"] == [
            {
                "field": "data",
                "workload": first["id"],
                "workload_name": first["name"],
                "volume": "data",
            }
        ]
        assert read_volumes(server, second) == kept == []
        assert audit_of(server, second) == audited

    assert put_volumes(server, first, [{**data, "shared": True}]).status_code == 200
    r = put_volumes(server, second, [{**data, "shared": True}])
    assert r.status_code == 200, r.text
    [a], [b] = read_volumes(server, first), read_volumes(server, second)
    assert a["shared"] is b["shared"] is True and a["host_path"] == b["host_path"]

    # The first takes its consent back while the second still mounts it: refused.
    error = assert_error(put_volumes(server, first, [data]), 409, "volume_in_use")
    assert second["name"] in error["message"] and second["id"] in error["message"]
    assert read_volumes(server, first) == [a]

    # Once the other workload is gone, the directory is the first's alone again.
    assert server.admin.delete(f"/api/workloads/{second['id']}").status_code == 204
    assert put_volumes(server, first, [data]).status_code == 200


def test_a_project_directory_is_shared_across_stages_only_when_both_say_so(
    server: Server, project: str
) -> None:
    production = create_workload(server, project)
    staging = create_workload(server, project, stage="staging")
    uploads = vol("uploads", "project", "uploads", "/uploads")
    assert put_volumes(server, production, [uploads]).status_code == 200
    error = assert_error(put_volumes(server, staging, [uploads]), 409, "volume_in_use")
    assert production["id"] in error["message"]
    assert read_volumes(server, staging) == []
    # The same stage source in two stages is two directories: no sharing at all.
    data = vol("data", "stage", "data", "/data")
    assert put_volumes(server, production, [uploads, data]).status_code == 200
    assert put_volumes(server, staging, [data]).status_code == 200


def test_the_shared_flag_alone_is_saved_and_shown(server: Server, seeded: dict[str, Any]) -> None:
    [before] = read_volumes(server, seeded)
    assert before["shared"] is False
    r = put_volumes(server, seeded, [{**specs([before])[0], "shared": True}])
    assert r.status_code == 200, r.text
    assert read_volumes(server, seeded) == [{**before, "shared": True}]


@pytest.mark.parametrize(
    "change",
    [
        {"image": "moorage-test/healthy:1"},
        {"command": ["sh", "-c", "cat /mnt/* ; sleep 3600"]},
    ],
    ids=["image", "command"],
)
def test_what_runs_with_an_absolute_volume_is_the_admins_to_change(
    server: Server, workload: dict[str, Any], change: dict[str, Any]
) -> None:
    """An ``absolute`` volume is a host path an admin chose for this workload's image: an
    operator who could swap the image or command would run anything over that path."""
    source = str(server.volume_root / unique("abs"))
    r = server.admin.put(vol_url(workload), json=[vol("abs", "absolute", source, "/mnt")])
    assert r.status_code == 200, r.text
    url = f"/api/workloads/{workload['id']}"
    before = server.viewer.get(url).json()["config"]
    r = server.operator.patch(url, json={"config": {**before, **change}})
    error = assert_error(r, 403, "needs_admin")
    assert "absolute_volume" in error["message"] and source in error["message"], error
    assert server.viewer.get(url).json()["config"] == before
    # So are its env (LD_PRELOAD, PATH), its other volumes (one over /bin) and its hooks.
    env = {"LD_PRELOAD": {"value": "/data/x.so", "secret": False}}
    assert_error(server.operator.put(f"{url}/env", json=env), 403, "needs_admin")
    over_bin = [vol("abs", "absolute", source, "/mnt"), vol("tools", "stage", "tools", "/bin")]
    assert_error(server.operator.put(vol_url(workload), json=over_bin), 403, "needs_admin")
    hooks = {"before": {"command": ["sh", "-c", "echo x >> /mnt/data"]}}
    assert_error(server.operator.put(f"{url}/snapshot-hooks", json=hooks), 403, "needs_admin")
    # Deploying it as it is stays an operator's; every change is an admin's.
    r = server.operator.post(f"{url}/deploy")
    assert r.status_code == 202, r.text
    r = server.admin.patch(url, json={"config": {**before, **change}})
    assert r.status_code == 200, r.text
    assert server.admin.put(vol_url(workload), json=over_bin).status_code == 200
