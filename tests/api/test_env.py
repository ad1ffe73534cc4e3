"""A workload's environment variables; secrets never come back out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, assert_error, create_workload, unique


def env_url(workload: dict[str, Any]) -> str:
    return f"/api/workloads/{workload['id']}/env"


def read_env(server: Server, workload: dict[str, Any]) -> dict[str, Any]:
    r = server.operator.get(env_url(workload))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_new_workload_has_no_env(server: Server, workload: dict[str, Any]) -> None:
    assert read_env(server, workload) == {}


def test_put_then_get_masks_secrets(server: Server, workload: dict[str, Any]) -> None:
    secret = "s3cret-" + unique("v")
    r = server.operator.put(
        env_url(workload),
        json={
            "PLAIN": {"value": "hello", "secret": False},
            "DEFAULTS_TO_PLAIN": {"value": "x"},
            "TOKEN": {"value": secret, "secret": True},
            "EMPTY": {"value": ""},
        },
    )
    assert r.status_code == 200, r.text
    expected = {
        "PLAIN": {"value": "hello", "secret": False},
        "DEFAULTS_TO_PLAIN": {"value": "x", "secret": False},
        "TOKEN": {"value": None, "secret": True},
        "EMPTY": {"value": "", "secret": False},
    }
    assert r.json() == expected
    assert secret not in r.text
    got = server.operator.get(env_url(workload))
    assert got.json() == expected
    assert secret not in got.text


def test_put_replaces_the_whole_set(server: Server, workload: dict[str, Any]) -> None:
    r = server.operator.put(env_url(workload), json={"A": {"value": "1"}, "B": {"value": "2"}})
    assert r.status_code == 200, r.text
    r = server.operator.put(env_url(workload), json={"B": {"value": "3"}, "C": {"value": "4"}})
    assert r.status_code == 200, r.text
    assert read_env(server, workload) == {
        "B": {"value": "3", "secret": False},
        "C": {"value": "4", "secret": False},
    }
    r = server.operator.put(env_url(workload), json={})
    assert r.status_code == 200, r.text
    assert read_env(server, workload) == {}


def test_null_keeps_an_existing_secret(server: Server, workload: dict[str, Any]) -> None:
    secret = "keep-me-" + unique("v")
    r = server.operator.put(
        env_url(workload), json={"TOKEN": {"value": secret, "secret": True}, "A": {"value": "1"}}
    )
    assert r.status_code == 200, r.text
    # A client echoing GET back (secret value null) keeps the secret and may change others.
    echoed = read_env(server, workload)
    echoed["A"] = {"value": "2", "secret": False}
    r = server.operator.put(env_url(workload), json=echoed)
    assert r.status_code == 200, r.text
    assert secret not in r.text
    assert read_env(server, workload) == {
        "A": {"value": "2", "secret": False},
        "TOKEN": {"value": None, "secret": True},
    }


def test_a_secret_can_be_replaced_and_made_plain_with_a_value(
    server: Server, workload: dict[str, Any]
) -> None:
    r = server.operator.put(env_url(workload), json={"T": {"value": "old", "secret": True}})
    assert r.status_code == 200, r.text
    r = server.operator.put(env_url(workload), json={"T": {"value": "visible", "secret": False}})
    assert r.status_code == 200, r.text
    assert read_env(server, workload) == {"T": {"value": "visible", "secret": False}}


def test_null_with_secret_false_does_not_reveal_the_secret(
    server: Server, workload: dict[str, Any]
) -> None:
    secret = "do-not-leak-" + unique("v")
    r = server.operator.put(env_url(workload), json={"TOKEN": {"value": secret, "secret": True}})
    assert r.status_code == 200, r.text
    before = read_env(server, workload)
    for body in ({"TOKEN": {"value": None}}, {"TOKEN": {"value": None, "secret": False}}):
        r = server.operator.put(env_url(workload), json=body)
        assert_error(r, 422, "invalid_env")
        assert secret not in r.text
        after = server.operator.get(env_url(workload))
        assert secret not in after.text
        assert after.json() == before


def test_null_for_a_new_key_is_422(server: Server, workload: dict[str, Any]) -> None:
    r = server.operator.put(env_url(workload), json={"A": {"value": "1"}})
    assert r.status_code == 200, r.text
    before = read_env(server, workload)
    r = server.operator.put(
        env_url(workload), json={"A": {"value": "1"}, "NEW": {"value": None, "secret": True}}
    )
    assert_error(r, 422, "invalid_env")
    assert read_env(server, workload) == before


def test_null_for_an_existing_plain_value_is_422(server: Server, workload: dict[str, Any]) -> None:
    r = server.operator.put(env_url(workload), json={"A": {"value": "1"}})
    assert r.status_code == 200, r.text
    before = read_env(server, workload)
    r = server.operator.put(env_url(workload), json={"A": {"value": None, "secret": True}})
    assert_error(r, 422, "invalid_env")
    assert read_env(server, workload) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"1STARTS_WITH_DIGIT": {"value": "x"}}, "invalid_env"),
        ({"HAS-DASH": {"value": "x"}}, "invalid_env"),
        ({"HAS SPACE": {"value": "x"}}, "invalid_env"),
        ({"": {"value": "x"}}, "invalid_env"),
        ({"NUL": {"value": "a\x00b"}}, "invalid_text"),
        ({"HUGE": {"value": "x" * (64 * 1024 + 1)}}, "invalid_env"),
        ({"A": {"value": "x", "colour": "red"}}, "invalid_request"),
        ({"A": {"secret": True}}, "invalid_request"),
        ({"A": {"value": 5}}, "invalid_request"),
        ({"A": "plain string"}, "invalid_request"),
    ],
)
def test_invalid_env_changes_nothing(
    server: Server, workload: dict[str, Any], body: dict[str, Any], code: str
) -> None:
    r = server.operator.put(env_url(workload), json={"KEEP": {"value": "kept"}})
    assert r.status_code == 200, r.text
    before = read_env(server, workload)
    assert_error(server.operator.put(env_url(workload), json=body), 422, code)
    assert read_env(server, workload) == before


def test_a_lone_surrogate_is_422_not_500(server: Server, workload: dict[str, Any]) -> None:
    before = read_env(server, workload)
    r = server.operator.put(
        env_url(workload),
        content=b'{"A": {"value": "\\ud800"}}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 422, "invalid_text")
    assert read_env(server, workload) == before


def test_a_value_of_exactly_64_kib_is_accepted(server: Server, workload: dict[str, Any]) -> None:
    value = "x" * (64 * 1024)
    r = server.operator.put(env_url(workload), json={"BIG": {"value": value}})
    assert r.status_code == 200, r.text
    assert read_env(server, workload)["BIG"]["value"] == value


def test_env_of_unknown_workload_is_404(server: Server) -> None:
    assert_error(server.operator.get("/api/workloads/wl_nope/env"), 404, "not_found")
    r = server.operator.put("/api/workloads/wl_nope/env", json={"A": {"value": "1"}})
    assert_error(r, 404, "not_found")


def test_viewer_cannot_read_or_write_env(server: Server, workload: dict[str, Any]) -> None:
    assert_error(server.viewer.get(env_url(workload)), 403, "forbidden")
    r = server.viewer.put(env_url(workload), json={"A": {"value": "1"}})
    assert_error(r, 403, "forbidden")
    assert read_env(server, workload) == {}


def test_env_is_per_workload(server: Server, project: str) -> None:
    first = create_workload(server, project)
    second = create_workload(server, project)
    r = server.operator.put(env_url(first), json={"ONLY_FIRST": {"value": "1"}})
    assert r.status_code == 200, r.text
    assert read_env(server, second) == {}
    assert set(read_env(server, first)) == {"ONLY_FIRST"}


def test_an_operator_can_reveal_one_secret_and_it_is_audited(
    server: Server, workload: dict[str, Any]
) -> None:
    secret = "s3cret-" + unique("v")
    body = {"TOKEN": {"value": secret, "secret": True}, "PLAIN": {"value": "p"}}
    assert server.operator.put(env_url(workload), json=body).status_code == 200
    r = server.operator.get(env_url(workload) + "/TOKEN")
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "TOKEN", "value": secret, "secret": True}
    assert server.operator.get(env_url(workload) + "/PLAIN").json()["value"] == "p"
    # The listing stays masked; the reveal left an audit row naming the key, not the value.
    assert read_env(server, workload)["TOKEN"]["value"] is None
    audit = server.admin.get(
        "/api/audit", params={"target_type": "workload", "target_id": workload["id"]}
    ).json()["items"]
    reveals = [e for e in audit if e["action"] == "env.reveal"]
    assert [(e["actor"], e["details"]["key"]) for e in reveals] == [("olga", "TOKEN")]
    assert secret not in str(audit)


def test_revealing_is_for_operators_and_existing_keys(
    server: Server, workload: dict[str, Any]
) -> None:
    body = {"TOKEN": {"value": "hidden-value", "secret": True}}
    assert server.operator.put(env_url(workload), json=body).status_code == 200
    r = server.viewer.get(env_url(workload) + "/TOKEN")
    assert_error(r, 403, "forbidden")
    assert "hidden-value" not in r.text
    assert_error(server.anonymous.get(env_url(workload) + "/TOKEN"), 401)
    assert_error(server.operator.get(env_url(workload) + "/NOPE"), 404, "not_found")
