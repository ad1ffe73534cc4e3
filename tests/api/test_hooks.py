"""``POST /hooks/{token}`` against the real server: signatures, fan-out, replay, rate
limit, filters, token rotation, the delivery log and the body cap.

Webhook calls carry no API credentials, only the token in the URL (and a signature).
Every workload here fails its deploy quickly (its container exits at once), so what
the hooks queue leaves nothing running; the ``deploys`` fixture waits for every
deployment a test queued to end, on a real timer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import (
    Server,
    admin_api,
    assert_error,
    create_workload,
    start_server,
    stop_server,
    unique,
)

# A deploy that fails at the engine's first answer: the image is on a registry no one
# listens on (refused at once), so no container is made, waited for or removed. These tests
# are about what a delivery queues; what a deploy runs is tests/integration's.
FAIL_FAST = {"image": "127.0.0.1:1/absent:1"}
SECRET = "hook-secret-for-the-api-tests"
WRONG_SECRET = "not-the-hook-secret-at-all"
PROVIDERS = ["github", "gitea", "gitlab", "generic"]
SIGNATURE = {
    "github": "X-Hub-Signature-256",
    "gitea": "X-Gitea-Signature",
    "gitlab": "X-Gitlab-Token",
    "generic": "X-Moorage-Signature",
}
DELIVERY = {
    "github": "X-GitHub-Delivery",
    "gitea": "X-Gitea-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
    "generic": "X-Moorage-Delivery",
}
EVENT = {
    "github": "X-GitHub-Event",
    "gitea": "X-Gitea-Event",
    "gitlab": "X-Gitlab-Event",
    "generic": "X-Moorage-Event",
}
PUSH_EVENT = {"github": "push", "gitea": "push", "gitlab": "Push Hook", "generic": "push"}
TERMINAL = {"succeeded", "failed", "interrupted"}
MIB = 1024 * 1024
SETTLE_SECONDS = 240


# --- helpers ----------------------------------------------------------------------


def sign(provider: str, secret: str, body: bytes) -> str:
    """The signature header value as each provider computes it."""
    if provider == "gitlab":
        return secret
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return digest if provider == "gitea" else f"sha256={digest}"


def push(provider: str, ref: str) -> bytes:
    payload: dict[str, Any] = {"ref": ref, "after": "1" * 40, "repository": {"name": "app"}}
    if provider == "gitlab":
        kind = "tag_push" if ref.startswith("refs/tags/") else "push"
        payload.update(object_kind=kind, event_name=kind)
    return json.dumps(payload).encode()


def registry_push(tag: str) -> bytes:
    event = {"action": "push", "target": {"repository": "team/app", "tag": tag}}
    return json.dumps({"events": [event]}).encode()


def headers_for(
    provider: str,
    body: bytes,
    secret: str | None = None,
    *,
    event: str | None = None,
    delivery: str | None = None,
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        EVENT[provider]: event or PUSH_EVENT[provider],
        DELIVERY[provider]: delivery or str(uuid.uuid4()),
    }
    if secret is not None:
        headers[SIGNATURE[provider]] = sign(provider, secret, body)
    return headers


def call(
    server: Server,
    token: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """One webhook call, as a provider makes it: no Authorization header."""
    if client is not None:
        return client.post(f"/hooks/{token}", content=body, headers=headers or {})
    return server.anonymous.post(f"/hooks/{token}", content=body, headers=headers or {})


def make_hook(server: Server, config: dict[str, Any]) -> dict[str, Any]:
    r = server.operator.post(
        "/api/triggers", json={"kind": "webhook", "name": unique("hook"), "config": config}
    )
    assert r.status_code == 201, r.text
    trigger = dict(r.json())
    assert trigger["token"]
    return trigger


def bound_workloads(server: Server, project: str, trigger: dict[str, Any], count: int) -> list[str]:
    """Create ``count`` fail-fast workloads through the API and bind the trigger to each."""
    ids = []
    with server.operator.client() as api:
        for _ in range(count):
            body = {
                "name": unique("w"),
                "kind": "image",
                "project": project,
                "stage": "production",
                "config": FAIL_FAST,
            }
            r = api.post("/api/workloads", json=body)
            assert r.status_code == 201, r.text
            wid = r.json()["id"]
            r = api.post(f"/api/workloads/{wid}/triggers", json={"trigger_id": trigger["id"]})
            assert r.status_code == 201, r.text
            ids.append(wid)
    r = server.viewer.get(f"/api/triggers/{trigger['id']}")
    assert sorted(r.json()["workloads"]) == sorted(ids)
    return ids


def deployments(server: Server, workload_id: str) -> list[dict[str, Any]]:
    r = server.viewer.get(f"/api/workloads/{workload_id}/deployments", params={"limit": 500})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def deployment_ids(server: Server, workload_ids: list[str]) -> dict[str, list[str]]:
    return {w: sorted(d["id"] for d in deployments(server, w)) for w in workload_ids}


def deliveries(server: Server, trigger_id: str) -> list[dict[str, Any]]:
    r = server.viewer.get(f"/api/triggers/{trigger_id}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


class Deploys:
    """Deployments a test queued; all of them must end before the test does."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.pending: dict[str, str] = {}  # deployment id -> workload id

    def expect(self, workload_ids: list[str], reason: str) -> dict[str, str]:
        """Each workload's one new deployment (which must carry ``reason``), by workload."""
        new = {}
        for wid in workload_ids:
            items = [d for d in deployments(self.server, wid) if d["id"] not in self.pending]
            assert len(items) == 1, (wid, items)
            assert items[0]["reason"] == reason
            new[wid] = items[0]["id"]
            self.pending[items[0]["id"]] = wid
        return new

    def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        waiting = dict(self.pending)
        with self.server.viewer.client() as api:
            while waiting:
                for did, wid in list(waiting.items()):
                    r = api.get(f"/api/workloads/{wid}/deployments/{did}")
                    assert r.status_code == 200, r.text
                    if r.json()["status"] in TERMINAL:
                        del waiting[did]
                assert time.monotonic() < deadline, f"{len(waiting)} deployments did not end"
                if waiting:
                    time.sleep(0.1)


@pytest.fixture
def deploys(server: Server) -> Iterator[Deploys]:
    tracker = Deploys(server)
    yield tracker
    tracker.settle()


# --- signatures, per provider -------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_right_secret_queues_one_deployment_per_bound_workload(
    server: Server, project: str, deploys: Deploys, provider: str
) -> None:
    hook = make_hook(server, {"provider": provider, "secret": SECRET})
    assert hook["last_fired_at"] is None
    workloads = bound_workloads(server, project, hook, 2)
    body = push(provider, "refs/heads/main")
    r = call(server, hook["token"], body, headers_for(provider, body, SECRET))
    assert r.status_code == 202, r.text
    answer = r.json()
    assert server.admin.get(f"/api/triggers/{hook['id']}").json()["last_fired_at"] is not None
    new = deploys.expect(workloads, f"trigger:{hook['id']}")
    assert sorted(answer["deployments"]) == sorted(new.values())
    assert answer["queued"] == 2
    log = deliveries(server, hook["id"])
    assert [(d["signature"], d["outcome"], d["provider"]) for d in log] == [
        ("valid", "queued", provider)
    ]
    assert sorted(log[0]["deployments"]) == sorted(new.values())
    # A wrong secret afterwards adds nothing to the deployments that are there.
    r = call(server, hook["token"], body, headers_for(provider, body, WRONG_SECRET))
    assert_error(r, 401, "bad_signature")
    assert deployment_ids(server, workloads) == {w: [new[w]] for w in workloads}


def test_a_refused_call_does_not_count_as_fired(server: Server, project: str) -> None:
    hook = make_hook(server, {"provider": "github", "secret": SECRET})
    bound_workloads(server, project, hook, 1)
    body = push("github", "refs/heads/main")
    assert_error(call(server, hook["token"], body, headers_for("github", body, WRONG_SECRET)), 401)
    assert server.admin.get(f"/api/triggers/{hook['id']}").json()["last_fired_at"] is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_or_missing_signature_is_401_and_queues_nothing(
    server: Server, project: str, provider: str
) -> None:
    hook = make_hook(server, {"provider": provider, "secret": SECRET})
    workloads = bound_workloads(server, project, hook, 2)
    before = deployment_ids(server, workloads)
    body = push(provider, "refs/heads/main")
    wrong = headers_for(provider, body, WRONG_SECRET)
    missing = headers_for(provider, body)
    other_body = headers_for(provider, body + b" ", SECRET)  # signed for another body
    other_header = headers_for(provider, body)
    other_header[SIGNATURE["gitea" if provider == "github" else "github"]] = sign(
        "github", SECRET, body
    )
    for headers, signature in (
        (wrong, "invalid"),
        (missing, "missing"),
        (other_header, "missing"),
        *([] if provider == "gitlab" else [(other_body, "invalid")]),
    ):
        r = call(server, hook["token"], body, headers)
        error = assert_error(r, 401, "bad_signature")
        assert signature in error["message"]
        assert SIGNATURE[provider].lower() in error["message"]
    assert deployment_ids(server, workloads) == before
    log = deliveries(server, hook["id"])
    assert {d["outcome"] for d in log} == {"refused"}
    assert all(d["deployments"] == [] and d["status_code"] == 401 for d in log)
    assert len(log) == (3 if provider == "gitlab" else 4)


def test_unsigned_trigger_accepts_any_call(server: Server, project: str, deploys: Deploys) -> None:
    hook = make_hook(server, {"provider": "generic"})
    assert hook["has_secret"] is False
    (workload,) = bound_workloads(server, project, hook, 1)
    r = call(server, hook["token"], b"anything at all", {"Content-Type": "text/plain"})
    assert r.status_code == 202, r.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]
    (logged,) = deliveries(server, hook["id"])
    assert logged["signature"] == "unsigned"
    assert logged["outcome"] == "queued"


@pytest.mark.parametrize("secret", [None, SECRET], ids=["unsigned", "signed"])
def test_a_trigger_with_nothing_bound_says_so(server: Server, secret: str | None) -> None:
    """Not "no filters" (why a call matched): why nothing was queued."""
    hook = make_hook(server, {"provider": "generic", **({"secret": secret} if secret else {})})
    body = registry_push("1.0")
    r = call(server, hook["token"], body, headers_for("generic", body, secret))
    assert r.status_code == 202, r.text
    assert (r.json()["queued"], r.json()["deployments"]) == (0, [])
    assert "no workload is bound" in r.json()["reason"], r.json()
    (logged,) = deliveries(server, hook["id"])
    assert "no workload is bound" in logged["reason"], logged


# --- fan-out --------------------------------------------------------------------------

FANOUT = 20
"""Bound workloads of the fan-out test; the 200-way fan-out is measured by bench/fanout.py."""


def test_one_call_fans_out_to_twenty_workloads(
    server: Server, project: str, deploys: Deploys
) -> None:
    hook = make_hook(server, {"provider": "github", "secret": SECRET})
    workloads = bound_workloads(server, project, hook, FANOUT)
    unbound = create_workload(server, project, config=FAIL_FAST)
    assert all(deployments(server, w) == [] for w in workloads)
    body = push("github", "refs/heads/main")
    r = call(server, hook["token"], body, headers_for("github", body, SECRET))
    assert r.status_code == 202, r.text
    answer = r.json()
    new = deploys.expect(workloads, f"trigger:{hook['id']}")
    assert len(set(new.values())) == FANOUT
    assert len(answer["deployments"]) == FANOUT
    assert sorted(answer["deployments"]) == sorted(new.values())
    assert answer["queued"] == FANOUT
    assert deployments(server, unbound["id"]) == []
    (logged,) = deliveries(server, hook["id"])
    assert sorted(logged["deployments"]) == sorted(new.values())
    deploys.settle()
    # Each deploy ran and ended (failed: its container exits at once, so nothing is left
    # running); none was queued twice while they ran.
    for wid, did in new.items():
        assert [(d["id"], d["status"]) for d in deployments(server, wid)] == [(did, "failed")]


# --- replay and rate limit --------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_replayed_delivery_is_200_and_not_queued_twice(
    server: Server, project: str, deploys: Deploys, provider: str
) -> None:
    hook = make_hook(server, {"provider": provider, "secret": SECRET})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = push(provider, "refs/heads/main")
    headers = headers_for(provider, body, SECRET, delivery=f"delivery-{provider}-1")
    first = call(server, hook["token"], body, headers)
    assert first.status_code == 202, first.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert first.json()["deployments"] == [new[workload]]
    again = call(server, hook["token"], body, headers)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["deployments"] == [new[workload]]
    assert f"delivery-{provider}-1" in again.json()["reason"]
    assert [d["id"] for d in deployments(server, workload)] == [new[workload]]
    log = deliveries(server, hook["id"])
    assert [(d["outcome"], d["status_code"], d["deployments"]) for d in log] == [
        ("duplicate", 200, []),
        ("queued", 202, [new[workload]]),
    ]


def test_a_replay_after_a_flood_of_refused_calls_is_still_a_duplicate(
    server: Server, project: str, deploys: Deploys
) -> None:
    """Refused calls cost an attacker nothing; they must not push a seen delivery id out
    of the replay window by rotating it out of the delivery log."""
    hook = make_hook(
        server, {"provider": "github", "secret": SECRET, "rate_limit_per_minute": 10000}
    )
    (workload,) = bound_workloads(server, project, hook, 1)
    body = push("github", "refs/heads/main")
    signed = headers_for("github", body, SECRET, delivery="captured-delivery")
    assert call(server, hook["token"], body, signed).status_code == 202
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    with server.anonymous.client() as client:
        for _ in range(105):
            r = call(server, hook["token"], body, headers_for("github", body, "x" * 12), client)
            assert r.status_code == 401, r.text
    assert "captured-delivery" not in {d["delivery_id"] for d in deliveries(server, hook["id"])}
    again = call(server, hook["token"], body, signed)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert [d["id"] for d in deployments(server, workload)] == [new[workload]]


def test_over_the_rate_limit_is_429_and_queues_nothing(server: Server, project: str) -> None:
    hook = make_hook(
        server, {"provider": "github", "filters": {"branch": "main"}, "rate_limit_per_minute": 2}
    )
    workloads = bound_workloads(server, project, hook, 1)
    before = deployment_ids(server, workloads)
    elsewhere = push("github", "refs/heads/dev")
    started = time.monotonic()
    for _ in range(2):
        r = call(server, hook["token"], elsewhere, headers_for("github", elsewhere))
        assert r.status_code == 202, r.text
        assert r.json()["queued"] == 0
    main = push("github", "refs/heads/main")  # would queue, if it were let through
    r = call(server, hook["token"], main, headers_for("github", main))
    # Two a minute refill one call every 30 s: all three must land well inside that.
    assert time.monotonic() - started < 25
    assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert deployment_ids(server, workloads) == before
    log = deliveries(server, hook["id"])
    assert [(d["outcome"], d["status_code"]) for d in log] == [
        ("rate_limited", 429),
        ("filtered", 202),
        ("filtered", 202),
    ]
    assert log[0]["deployments"] == []
    # Another trigger has its own budget.
    other = make_hook(server, {"provider": "generic"})
    assert call(server, other["token"]).status_code == 202


# --- filters and events ---------------------------------------------------------------


def test_branch_filter(server: Server, project: str, deploys: Deploys) -> None:
    hook = make_hook(
        server, {"provider": "gitea", "secret": SECRET, "filters": {"branch": "release/*"}}
    )
    (workload,) = bound_workloads(server, project, hook, 1)
    for ref in ("refs/heads/main", "refs/tags/release/1", "refs/heads/release"):
        body = push("gitea", ref)
        r = call(server, hook["token"], body, headers_for("gitea", body, SECRET))
        assert r.status_code == 202, r.text
        assert r.json()["queued"] == 0
        assert r.json()["deployments"] == []
        assert ref.rsplit("/", 1)[-1] in r.json()["reason"]
    assert "does not match 'release/*'" in r.json()["reason"]
    assert deployments(server, workload) == []
    body = push("gitea", "refs/heads/release/2.1")
    r = call(server, hook["token"], body, headers_for("gitea", body, SECRET))
    assert r.status_code == 202, r.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]
    assert "release/2.1 matches 'release/*'" in r.json()["reason"]
    outcomes = [d["outcome"] for d in deliveries(server, hook["id"])]
    assert outcomes == ["queued", "filtered", "filtered", "filtered"]


def test_tag_glob_on_a_gitlab_tag_push(server: Server, project: str, deploys: Deploys) -> None:
    hook = make_hook(server, {"provider": "gitlab", "secret": SECRET, "filters": {"tag": "v1.*"}})
    (workload,) = bound_workloads(server, project, hook, 1)
    for ref in ("refs/tags/v2.0.0", "refs/heads/v1.x"):
        body = push("gitlab", ref)
        headers = headers_for("gitlab", body, SECRET, event="Tag Push Hook")
        r = call(server, hook["token"], body, headers)
        assert r.status_code == 202, r.text
        assert r.json()["queued"] == 0
    assert deployments(server, workload) == []
    body = push("gitlab", "refs/tags/v1.4.2")
    r = call(
        server, hook["token"], body, headers_for("gitlab", body, SECRET, event="Tag Push Hook")
    )
    assert r.status_code == 202, r.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]
    assert "v1.4.2" in r.json()["reason"]


def test_tag_filter_on_a_registry_notification(
    server: Server, project: str, deploys: Deploys
) -> None:
    hook = make_hook(server, {"provider": "generic", "secret": SECRET, "filters": {"tag": "1.*"}})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = registry_push("2.0")
    r = call(server, hook["token"], body, headers_for("generic", body, SECRET))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert "2.0" in r.json()["reason"]
    assert deployments(server, workload) == []
    body = registry_push("1.2")
    r = call(server, hook["token"], body, headers_for("generic", body, SECRET))
    assert r.status_code == 202, r.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]
    assert "1.2" in r.json()["reason"]


@pytest.mark.parametrize(
    "body",
    [b"branch=main", b"[" * 200_000, b'{"ref": ' * 100_000],
    ids=["not-json", "deep-array", "deep-object"],
)
def test_a_filtered_hook_with_a_hostile_body_is_filtered_out(
    server: Server, project: str, body: bytes
) -> None:
    hook = make_hook(server, {"provider": "generic", "filters": {"branch": "main"}})
    workloads = bound_workloads(server, project, hook, 1)
    r = call(server, hook["token"], body, {"Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert r.json()["reason"]
    assert deployment_ids(server, workloads) == {workloads[0]: []}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_ping_queues_nothing(server: Server, project: str, provider: str) -> None:
    hook = make_hook(server, {"provider": provider, "secret": SECRET})
    workloads = bound_workloads(server, project, hook, 1)
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    r = call(server, hook["token"], body, headers_for(provider, body, SECRET, event="ping"))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert r.json()["deployments"] == []
    assert "ping" in r.json()["reason"]
    assert deployment_ids(server, workloads) == {workloads[0]: []}
    # A ping still needs the signature.
    r = call(server, hook["token"], body, headers_for(provider, body, WRONG_SECRET, event="ping"))
    assert_error(r, 401, "bad_signature")


# --- the URL token ---------------------------------------------------------------------


def test_unknown_token_is_404(server: Server) -> None:
    for token in ("no-such-token", "x" * 43, uuid.uuid4().hex):
        error = assert_error(call(server, token, b"{}"), 404, "unknown_hook")
        assert token not in error["message"]


def test_a_schedule_has_no_hook_url(server: Server) -> None:
    r = server.operator.post(
        "/api/triggers",
        json={"kind": "schedule", "name": unique("cron"), "config": {"cron": "0 3 * * *"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["token"] is None
    assert_error(call(server, "None"), 404, "unknown_hook")
    assert_error(server.operator.post(f"/api/triggers/{r.json()['id']}/token"), 422, "no_token")


def test_regenerated_token_retires_the_old_url(server: Server) -> None:
    hook = make_hook(server, {"provider": "generic"})
    old = hook["token"]
    assert call(server, old).status_code == 202
    assert_error(server.viewer.post(f"/api/triggers/{hook['id']}/token"), 403, "forbidden")
    assert call(server, old).status_code == 202
    r = server.operator.post(f"/api/triggers/{hook['id']}/token")
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert new != old
    assert len(new) >= 32
    assert r.json()["url"] == f"{server.url}/hooks/{new}"
    assert server.operator.get(f"/api/triggers/{hook['id']}").json()["token"] == new
    assert_error(call(server, old), 404, "unknown_hook")
    r = call(server, new)
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert [d["status_code"] for d in deliveries(server, hook["id"])] == [202, 202, 202]


# --- the delivery log --------------------------------------------------------------------


def test_delivery_log_says_what_arrived_and_what_it_queued(
    server: Server, project: str, deploys: Deploys
) -> None:
    hook = make_hook(
        server, {"provider": "github", "secret": SECRET, "filters": {"branch": "main"}}
    )
    (workload,) = bound_workloads(server, project, hook, 1)
    main, dev = push("github", "refs/heads/main"), push("github", "refs/heads/dev")
    sent = [
        (main, headers_for("github", main, WRONG_SECRET, delivery="d-1"), 401),
        (dev, headers_for("github", dev, SECRET, delivery="d-2"), 202),
        (main, headers_for("github", main, SECRET, delivery="d-3"), 202),
        (main, headers_for("github", main, SECRET, delivery="d-3"), 200),
    ]
    answers = []
    for body, headers, status in sent:
        r = call(server, hook["token"], body, headers)
        assert r.status_code == status, r.text
        answers.append(r.json())
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    log = deliveries(server, hook["id"])
    assert [
        (d["delivery_id"], d["signature"], d["outcome"], d["status_code"], d["deployments"])
        for d in log
    ] == [
        ("d-3", "valid", "duplicate", 200, []),
        ("d-3", "valid", "queued", 202, [new[workload]]),
        ("d-2", "valid", "filtered", 202, []),
        ("d-1", "invalid", "refused", 401, []),
    ]
    assert [d["id"] for d in log] == sorted((d["id"] for d in log), reverse=True)
    assert [d["at"] for d in log] == sorted((d["at"] for d in log), reverse=True)
    assert {d["source"] for d in log} == {"127.0.0.1"}
    assert {d["provider"] for d in log} == {"github"}
    assert {d["event"] for d in log} == {"push"}
    assert "dev" in log[2]["reason"]
    # The pushed commit (``after``) is on every delivery whose body was read.
    assert [d["commit"] for d in log] == ["1" * 40, "1" * 40, "1" * 40, None]
    assert log[2]["id"] == answers[1]["delivery"]
    assert log[1]["id"] == answers[2]["delivery"]
    assert SECRET not in json.dumps(log)
    assert_error(server.anonymous.get(f"/api/triggers/{hook['id']}/deliveries"), 401)
    assert_error(server.viewer.get("/api/triggers/tr_nope/deliveries"), 404, "not_found")


def test_delivery_log_keeps_the_newest_hundred(server: Server) -> None:
    hook = make_hook(
        server,
        {"provider": "generic", "filters": {"branch": "main"}, "rate_limit_per_minute": 10000},
    )
    body = push("generic", "refs/heads/dev")
    with server.anonymous.client() as client:
        for i in range(105):
            headers = headers_for("generic", body, delivery=f"n-{i:03d}")
            r = call(server, hook["token"], body, headers, client)
            assert r.status_code == 202, r.text
    log = deliveries(server, hook["id"])
    assert [d["delivery_id"] for d in log] == [f"n-{i:03d}" for i in range(104, 4, -1)]
    assert {d["outcome"] for d in log} == {"filtered"}


# --- the body cap ------------------------------------------------------------------------


def test_a_body_over_one_mib_is_413_and_queues_nothing(server: Server, project: str) -> None:
    hook = make_hook(server, {"provider": "generic", "filters": {"branch": "main"}})
    workloads = bound_workloads(server, project, hook, 1)
    r = call(server, hook["token"], b"x" * MIB, {"Content-Type": "text/plain"})
    assert r.status_code == 202, r.text  # exactly at the cap: read, and filtered out
    assert r.json()["queued"] == 0
    r = call(server, hook["token"], b"x" * (MIB + 1), {"Content-Type": "text/plain"})
    assert_error(r, 413, "payload_too_large")
    assert deployment_ids(server, workloads) == {workloads[0]: []}
    assert [d["status_code"] for d in deliveries(server, hook["id"])] == [202]


# --- what costs an attacker nothing costs the sender nothing ---------------------------


def test_forged_calls_do_not_spend_the_budget_of_signed_deliveries(
    server: Server, project: str, deploys: Deploys
) -> None:
    hook = make_hook(server, {"provider": "github", "secret": SECRET, "rate_limit_per_minute": 2})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = push("github", "refs/heads/main")
    with server.anonymous.client() as client:
        for headers in [headers_for("github", body, WRONG_SECRET) for _ in range(10)] + [
            headers_for("github", body) for _ in range(10)
        ]:
            assert_error(call(server, hook["token"], body, headers, client), 401, "bad_signature")
    assert deployments(server, workload) == []
    r = call(server, hook["token"], body, headers_for("github", body, SECRET))
    assert r.status_code == 202, r.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]
    # What forgers send is logged at most the trigger's rate a minute: no unbounded writes.
    log = deliveries(server, hook["id"])
    assert [d["outcome"] for d in log] == ["queued", "refused", "refused"]


def test_an_address_sending_forged_calls_is_paced_and_the_git_host_is_not(
    tmp_path: Path,
) -> None:
    """Forged calls spend nothing of the trigger's budget (above), but they do spend
    their address's: each cost a worker thread a read and an HMAC of up to 1 MiB, at
    any rate (attacker pass J: 134 a second from one address put healthz at 260 ms).
    Past the address's burst they are 429 unread, and so is that address's signed call;
    a signed delivery from another address is 202. On a server pacing at 1 request a
    second (a burst of 30)."""
    proc, url, env = start_server(tmp_path / "var", {"MOORAGE_ANONYMOUS_RATE": "1"})
    try:
        api = admin_api(url, env)
        r = api.post(
            "/api/triggers",
            json={"kind": "webhook", "name": "paced", "config": {"secret": SECRET}},
        )
        token = r.json()["token"]
        body = push("generic", "refs/heads/main")

        def from_(source: str) -> httpx.Client:
            transport = httpx.HTTPTransport(local_address=source)
            return httpx.Client(base_url=url, transport=transport, timeout=30)

        with from_("127.0.4.1") as forger:
            statuses = [
                forger.post(
                    f"/hooks/{token}",
                    content=body,
                    headers=headers_for("generic", body, WRONG_SECRET),
                ).status_code
                for _ in range(40)
            ]
            assert statuses[0] == 401 and statuses[-1] == 429, statuses
            assert set(statuses) == {401, 429} and statuses.count(401) <= 32, statuses
            signed = forger.post(
                f"/hooks/{token}", content=body, headers=headers_for("generic", body, SECRET)
            )
            assert_error(signed, 429, "too_many_requests")
            assert int(signed.headers["retry-after"]) >= 1
        with from_("127.0.4.2") as git_host:
            for _ in range(40):  # deliveries spend nothing, however many
                again = push("generic", f"refs/heads/main-{uuid.uuid4()}")
                r = git_host.post(
                    f"/hooks/{token}", content=again, headers=headers_for("generic", again, SECRET)
                )
                assert r.status_code == 202, r.text
    finally:
        stop_server(proc)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_body_replayed_under_a_new_or_no_delivery_id_is_a_duplicate(
    server: Server, project: str, deploys: Deploys, provider: str
) -> None:
    hook = make_hook(server, {"provider": provider, "secret": SECRET})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = push(provider, "refs/heads/main")
    first = call(server, hook["token"], body, headers_for(provider, body, SECRET, delivery="d-1"))
    assert first.status_code == 202, first.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    renamed = headers_for(provider, body, SECRET, delivery="d-2")
    unnamed = headers_for(provider, body, SECRET)
    del unnamed[DELIVERY[provider]]
    for headers in (renamed, unnamed):
        again = call(server, hook["token"], body, headers)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        assert again.json()["deployments"] == [new[workload]]
        assert "d-1" in again.json()["reason"]
    assert [d["id"] for d in deployments(server, workload)] == [new[workload]]
    log = deliveries(server, hook["id"])
    assert [(d["delivery_id"], d["outcome"], d["status_code"]) for d in log] == [
        (None, "duplicate", 200),
        ("d-2", "duplicate", 200),
        ("d-1", "queued", 202),
    ]
    # Another body is another delivery.
    other = push(provider, "refs/heads/release")
    r = call(server, hook["token"], other, headers_for(provider, other, SECRET))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 1
    deploys.expect([workload], f"trigger:{hook['id']}")


def test_replays_do_not_spend_the_budget(server: Server, project: str, deploys: Deploys) -> None:
    hook = make_hook(server, {"provider": "generic", "secret": SECRET, "rate_limit_per_minute": 2})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = push("generic", "refs/heads/main")
    assert (
        call(server, hook["token"], body, headers_for("generic", body, SECRET)).status_code == 202
    )
    deploys.expect([workload], f"trigger:{hook['id']}")
    for _ in range(5):
        r = call(server, hook["token"], body, headers_for("generic", body, SECRET))
        assert r.status_code == 200, r.text
    other = push("generic", "refs/heads/next")
    r = call(server, hook["token"], other, headers_for("generic", other, SECRET))
    assert r.status_code == 202, r.text  # the second call of the budget, not the seventh
    deploys.expect([workload], f"trigger:{hook['id']}")


# --- deletions deploy nothing ------------------------------------------------------------

ZEROS = "0" * 40


def deleting_push(provider: str, ref: str) -> bytes:
    """A push that deletes ``ref``, as each provider sends it: GitHub flags it and sends
    ``after`` as zeros; GitLab and Gitea send only the zeros."""
    payload: dict[str, Any] = {"ref": ref, "before": "1" * 40, "after": ZEROS, "commits": []}
    if provider == "github":
        payload.update(created=False, deleted=True, forced=False, head_commit=None)
    if provider == "gitlab":
        kind = "tag_push" if ref.startswith("refs/tags/") else "push"
        payload.update(object_kind=kind, event_name=kind, checkout_sha=None)
    return json.dumps(payload).encode()


def gitlab_event(ref: str) -> str:
    return "Tag Push Hook" if ref.startswith("refs/tags/") else "Push Hook"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("ref", "filters", "what"),
    [
        ("refs/heads/main", {"branch": "main"}, "branch main"),
        ("refs/heads/main", None, "branch main"),
        ("refs/tags/v1.2.0", {"tag": "v1.*"}, "tag v1.2.0"),
        ("refs/tags/v1.2.0", None, "tag v1.2.0"),
    ],
    ids=["branch-filtered", "branch-unfiltered", "tag-filtered", "tag-unfiltered"],
)
def test_a_push_that_deletes_a_branch_or_tag_queues_nothing(
    server: Server,
    project: str,
    deploys: Deploys,
    provider: str,
    ref: str,
    filters: dict[str, str] | None,
    what: str,
) -> None:
    config: dict[str, Any] = {"provider": provider, "secret": SECRET}
    if filters is not None:
        config["filters"] = filters
    hook = make_hook(server, config)
    (workload,) = bound_workloads(server, project, hook, 1)
    event = gitlab_event(ref) if provider == "gitlab" else "push"
    body = deleting_push(provider, ref)
    r = call(server, hook["token"], body, headers_for(provider, body, SECRET, event=event))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert r.json()["deployments"] == []
    assert r.json()["reason"] == f"{what} was deleted: nothing to deploy"
    assert deployments(server, workload) == []
    (logged,) = deliveries(server, hook["id"])
    assert (logged["outcome"], logged["status_code"], logged["deployments"]) == (
        "filtered",
        202,
        [],
    )
    assert logged["reason"] == f"{what} was deleted: nothing to deploy"
    assert server.viewer.get(f"/api/triggers/{hook['id']}").json()["last_fired_at"] is None
    # The same ref pushed (not deleted) through the same hook does deploy.
    body = push(provider, ref)
    r = call(server, hook["token"], body, headers_for(provider, body, SECRET, event=event))
    assert r.status_code == 202, r.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]


@pytest.mark.parametrize("provider", ["github", "gitea"])
def test_a_delete_event_queues_nothing(server: Server, project: str, provider: str) -> None:
    hook = make_hook(server, {"provider": provider, "secret": SECRET})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = json.dumps({"ref": "main", "ref_type": "branch", "pusher_type": "user"}).encode()
    r = call(server, hook["token"], body, headers_for(provider, body, SECRET, event="delete"))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert r.json()["reason"] == "branch main was deleted: nothing to deploy"
    assert deployments(server, workload) == []


# --- GitHub's default content type: a form with the JSON in ``payload`` -------------------


def form_push(ref: str) -> bytes:
    return urlencode({"payload": push("github", ref).decode()}).encode()


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def form_headers(body: bytes, secret: str | None) -> dict[str, str]:
    headers = headers_for("github", body, secret)
    headers["Content-Type"] = FORM_CONTENT_TYPE
    return headers


def test_a_signed_form_encoded_github_push_queues_one(
    server: Server, project: str, deploys: Deploys
) -> None:
    hook = make_hook(
        server, {"provider": "github", "secret": SECRET, "filters": {"branch": "main"}}
    )
    (workload,) = bound_workloads(server, project, hook, 1)
    dev = form_push("refs/heads/dev")
    r = call(server, hook["token"], dev, form_headers(dev, SECRET))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 0
    assert "branch dev does not match 'main'" in r.json()["reason"]
    main = form_push("refs/heads/main")
    r = call(server, hook["token"], main, form_headers(main, SECRET))
    assert r.status_code == 202, r.text
    assert r.json()["queued"] == 1
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    assert r.json()["deployments"] == [new[workload]]
    assert "branch main matches 'main'" in r.json()["reason"]
    log = deliveries(server, hook["id"])
    assert [(d["signature"], d["outcome"]) for d in log] == [
        ("valid", "queued"),
        ("valid", "filtered"),
    ]


def test_a_forged_form_encoded_github_push_is_401_and_queues_nothing(
    server: Server, project: str
) -> None:
    hook = make_hook(server, {"provider": "github", "secret": SECRET})
    (workload,) = bound_workloads(server, project, hook, 1)
    body = form_push("refs/heads/main")
    inner = push("github", "refs/heads/main")
    forged = [
        form_headers(body, WRONG_SECRET),
        form_headers(body, None),
        {**form_headers(body, None), SIGNATURE["github"]: sign("github", SECRET, inner)},
    ]
    for headers in forged:
        assert_error(call(server, hook["token"], body, headers), 401, "bad_signature")
    assert deployments(server, workload) == []
    assert {d["outcome"] for d in deliveries(server, hook["id"])} == {"refused"}


# --- two copies of one delivery at the same instant ----------------------------------------

COPIES = 4
ROUNDS = 6


def send_together(
    server: Server, token: str, body: bytes, headers: dict[str, str]
) -> list[httpx.Response]:
    """``COPIES`` identical calls, each on its own connection, released by one barrier."""
    barrier = threading.Barrier(COPIES)
    answers: list[httpx.Response] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                client.get("/api/healthz")  # connected before the barrier
                barrier.wait(timeout=30)
                answers.append(client.post(f"/hooks/{token}", content=body, headers=headers))
        except BaseException as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)

    threads = [threading.Thread(target=send, daemon=True) for _ in range(COPIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not any(t.is_alive() for t in threads), "a call never came back"
    assert errors == []
    return answers


@pytest.mark.parametrize("secret", [SECRET, None], ids=["signed", "unsigned"])
def test_identical_deliveries_sent_together_queue_once(
    server: Server, project: str, deploys: Deploys, secret: str | None
) -> None:
    config: dict[str, Any] = {"provider": "github", "rate_limit_per_minute": 10000}
    if secret is not None:
        config["secret"] = secret
    hook = make_hook(server, config)
    (workload,) = bound_workloads(server, project, hook, 1)
    for n in range(ROUNDS):
        payload = {"ref": "refs/heads/main", "after": f"{n + 1:040x}"}
        body = json.dumps(payload).encode()
        headers = headers_for("github", body, secret, delivery=f"race-{n}")
        answers = send_together(server, hook["token"], body, headers)
        assert sorted(r.status_code for r in answers) == [200] * (COPIES - 1) + [202], [
            r.text for r in answers
        ]
        (first,) = [r.json() for r in answers if r.status_code == 202]
        assert first["queued"] == 1
        new = deploys.expect([workload], f"trigger:{hook['id']}")
        assert first["deployments"] == [new[workload]]
        for again in (r.json() for r in answers if r.status_code == 200):
            assert again["duplicate"] is True
            assert f"race-{n}" in again["reason"]
            assert again["deployments"] == [new[workload]]
        deploys.settle()  # else the next round joins this one while it is still queued
    assert len(deployments(server, workload)) == ROUNDS
    log = deliveries(server, hook["id"])
    assert sorted(d["outcome"] for d in log) == sorted(
        ["queued"] * ROUNDS + ["duplicate"] * ROUNDS * (COPIES - 1)
    )


def test_gitea_signed_bytes_rewrapped_are_a_replay_and_spend_nothing(
    server: Server, project: str, deploys: Deploys
) -> None:
    """The helper's reproduction: Gitea signs the JSON document, which a form carries in
    ``payload``; the replay guard hashed the whole body, so a captured delivery re-sent
    as a form, or with an extra field, queued again and spent the rate limit until a
    genuine delivery got 429. The guard keys on the signed bytes."""
    hook = make_hook(server, {"provider": "gitea", "secret": SECRET, "rate_limit_per_minute": 2})
    (workload,) = bound_workloads(server, project, hook, 1)
    doc = push("gitea", "refs/heads/main")
    first = call(server, hook["token"], doc, headers_for("gitea", doc, SECRET, delivery="g-1"))
    assert first.status_code == 202, first.text
    new = deploys.expect([workload], f"trigger:{hook['id']}")
    signed = headers_for("gitea", doc, SECRET)  # the signature of the document itself
    as_form = {**signed, "Content-Type": FORM_CONTENT_TYPE}
    form = urlencode({"payload": doc.decode()}).encode()
    rewrapped = [form, form + b"&x=1", b"x=2&" + form, form + b"&payload=other"]
    for n, body in enumerate(rewrapped):
        headers = dict(as_form)
        if n % 2:  # a new delivery id, or none
            headers[DELIVERY["gitea"]] = f"g-{n + 2}"
        else:
            del headers[DELIVERY["gitea"]]
        again = call(server, hook["token"], body, headers)
        assert again.status_code == 200, (body, again.text)
        assert again.json()["duplicate"] is True and again.json()["deployments"] == [new[workload]]
    assert [d["id"] for d in deployments(server, workload)] == [new[workload]]
    # The budget (2 a minute) is whole: the next genuine delivery is queued.
    other = push("gitea", "refs/heads/release")
    r = call(server, hook["token"], other, headers_for("gitea", other, SECRET))
    assert r.status_code == 202, r.text
    deploys.expect([workload], f"trigger:{hook['id']}")
