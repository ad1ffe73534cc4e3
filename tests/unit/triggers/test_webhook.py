"""The webhook trigger kind: provider signatures, refs from payloads, filters, verdicts.

Pure functions, no server: every provider format is checked valid, invalid, missing
and unsigned, and every payload shape the filters understand is read back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from moorage.errors import InvalidInput
from moorage.plugins.spec import HookRequest
from moorage.triggers.webhook import (
    FORM,
    WebhookConfig,
    WebhookFilters,
    WebhookTrigger,
    check_signature,
    deletion,
    form_field,
    match,
    pushed_commit,
    read_payload,
    refs,
)

# GitHub's published example ("Validating webhook deliveries").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SECRET = "a-shared-secret-for-tests"
BODY = b'{"ref": "refs/heads/main", "after": "0123456789abcdef"}'

HEADER = {
    "github": "x-hub-signature-256",
    "gitea": "x-gitea-signature",
    "gitlab": "x-gitlab-token",
    "generic": "x-moorage-signature",
}
PROVIDERS = sorted(HEADER)


def hexmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(provider: str, secret: str, body: bytes) -> str:
    """The header value each provider sends, computed here independently of Moorage."""
    if provider == "gitlab":
        return secret
    if provider == "gitea":
        return hexmac(secret, body)
    return "sha256=" + hexmac(secret, body)


def flip(text: str, at: int) -> str:
    """``text`` with the character at ``at`` changed to another hex digit."""
    new = "0" if text[at] != "0" else "1"
    return text[:at] + new + text[at + 1 :]


# --- GitHub's published example ---------------------------------------------


def test_github_published_example_validates() -> None:
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE}
    assert check_signature("github", GITHUB_SECRET, headers, GITHUB_PAYLOAD) == "valid"


@pytest.mark.parametrize(
    "body",
    [
        b"hello, World!",  # first byte
        b"Hello, World?",  # last byte
        b"Hello, Wprld!",  # a middle byte
        b"Hello, World!\n",  # one byte more
        b"Hello, World",  # one byte less
    ],
)
def test_github_example_with_one_byte_of_the_body_changed_is_invalid(body: bytes) -> None:
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE}
    assert check_signature("github", GITHUB_SECRET, headers, body) == "invalid"


@pytest.mark.parametrize("at", [len("sha256="), len("sha256=") + 31, len(GITHUB_SIGNATURE) - 1])
def test_github_example_with_one_hex_digit_of_the_signature_changed_is_invalid(at: int) -> None:
    headers = {"x-hub-signature-256": flip(GITHUB_SIGNATURE, at)}
    assert check_signature("github", GITHUB_SECRET, headers, GITHUB_PAYLOAD) == "invalid"


@pytest.mark.parametrize(
    "sent",
    [
        GITHUB_SIGNATURE.replace("sha256=", "sha257="),  # the prefix
        GITHUB_SIGNATURE.removeprefix("sha256="),  # no prefix at all
        GITHUB_SIGNATURE[:-1],  # one digit short
        GITHUB_SIGNATURE + "0",  # one digit long
        GITHUB_SIGNATURE.upper(),  # GitHub sends lower-case hex
    ],
)
def test_github_example_with_a_mangled_signature_is_invalid(sent: str) -> None:
    headers = {"x-hub-signature-256": sent}
    assert check_signature("github", GITHUB_SECRET, headers, GITHUB_PAYLOAD) == "invalid"


def test_github_example_with_another_secret_is_invalid() -> None:
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE}
    assert check_signature("github", GITHUB_SECRET + "!", headers, GITHUB_PAYLOAD) == "invalid"


# --- every provider format ----------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_right_secret_is_valid(provider: str) -> None:
    headers = {HEADER[provider]: signed(provider, SECRET, BODY)}
    assert check_signature(provider, SECRET, headers, BODY) == "valid"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_secret_is_invalid(provider: str) -> None:
    headers = {HEADER[provider]: signed(provider, "another-secret-entirely", BODY)}
    assert check_signature(provider, SECRET, headers, BODY) == "invalid"


@pytest.mark.parametrize("provider", ["github", "gitea", "generic"])
def test_hmac_providers_refuse_a_changed_body(provider: str) -> None:
    headers = {HEADER[provider]: signed(provider, SECRET, BODY)}
    assert check_signature(provider, SECRET, headers, BODY + b" ") == "invalid"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("headers", [{}, {"x-other": "1"}], ids=["none", "unrelated"])
def test_no_signature_header_is_missing(provider: str, headers: dict[str, str]) -> None:
    assert check_signature(provider, SECRET, headers, BODY) == "missing"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_empty_signature_header_is_missing(provider: str) -> None:
    assert check_signature(provider, SECRET, {HEADER[provider]: ""}, BODY) == "missing"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_another_providers_header_is_missing(provider: str) -> None:
    others = {HEADER[p]: signed(p, SECRET, BODY) for p in PROVIDERS if p != provider}
    assert check_signature(provider, SECRET, others, BODY) == "missing"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("secret", [None, ""], ids=["none", "empty"])
def test_no_secret_is_unsigned_whatever_is_sent(provider: str, secret: str | None) -> None:
    assert check_signature(provider, secret, {}, BODY) == "unsigned"
    sent = {HEADER[provider]: "sha256=" + "0" * 64}
    assert check_signature(provider, secret, sent, BODY) == "unsigned"


@pytest.mark.parametrize(
    ("provider", "sent"),
    [
        ("gitea", "sha256=" + hexmac(SECRET, BODY)),  # Gitea sends bare hex
        ("generic", hexmac(SECRET, BODY)),  # generic wants the sha256= prefix
        ("github", hexmac(SECRET, BODY)),
        ("gitlab", "sha256=" + hexmac(SECRET, BODY)),  # GitLab sends the secret itself
        ("gitlab", SECRET[:-1]),
        ("gitlab", SECRET + " "),
    ],
)
def test_a_neighbouring_format_is_invalid(provider: str, sent: str) -> None:
    assert check_signature(provider, SECRET, {HEADER[provider]: sent}, BODY) == "invalid"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_non_ascii_signature_is_invalid_not_an_error(provider: str) -> None:
    # Header values arrive as latin-1 text; a str compare_digest would raise on them.
    sent = {HEADER[provider]: "sha256=" + "é" * 64}
    assert check_signature(provider, SECRET, sent, BODY) == "invalid"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_verdict_comes_from_compare_digest(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turn constant-time comparison upside down: the verdict must follow it."""
    calls: list[tuple[Any, Any]] = []

    def inverted(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return not real(a, b)

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", inverted)
    good = {HEADER[provider]: signed(provider, SECRET, BODY)}
    bad = {HEADER[provider]: signed(provider, "another-secret-entirely", BODY)}
    assert check_signature(provider, SECRET, good, BODY) == "invalid"
    assert check_signature(provider, SECRET, bad, BODY) == "valid"
    assert len(calls) == 2
    assert calls[0][0] in (good[HEADER[provider]], good[HEADER[provider]].encode())


# --- refs from payloads -----------------------------------------------------------


GITHUB_PUSH = {
    "ref": "refs/heads/main",
    "before": "0" * 40,
    "after": "1" * 40,
    "repository": {"full_name": "team/app"},
    "pusher": {"name": "octocat"},
}
GITEA_PUSH = {
    "ref": "refs/heads/feature/login",
    "before": "0" * 40,
    "after": "2" * 40,
    "repository": {"full_name": "team/app"},
    "pusher": {"login": "gitea"},
}
GITLAB_PUSH = {
    "object_kind": "push",
    "event_name": "push",
    "ref": "refs/heads/release-2",
    "checkout_sha": "3" * 40,
    "project": {"path_with_namespace": "team/app"},
}
GITLAB_TAG_PUSH = {
    "object_kind": "tag_push",
    "event_name": "tag_push",
    "ref": "refs/tags/v1.4.0",
    "checkout_sha": "4" * 40,
    "project": {"path_with_namespace": "team/app"},
}
GITHUB_TAG_PUSH = {"ref": "refs/tags/v2.0.0", "after": "5" * 40}
REGISTRY_PUSH = {
    "events": [
        {
            "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": "sha256:" + "6" * 64,
                "repository": "team/app",
                "tag": "1.2",
            },
        }
    ]
}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (GITHUB_PUSH, ("main", None)),
        (GITEA_PUSH, ("feature/login", None)),
        (GITLAB_PUSH, ("release-2", None)),
        (GITHUB_TAG_PUSH, (None, "v2.0.0")),
        (GITLAB_TAG_PUSH, (None, "v1.4.0")),
        (REGISTRY_PUSH, (None, "1.2")),
        (
            {"events": [{"action": "push", "target": {"repository": "team/app", "tag": "1.2"}}]},
            (None, "1.2"),
        ),
    ],
    ids=["github", "gitea", "gitlab", "github-tag", "gitlab-tag_push", "registry", "registry-min"],
)
def test_refs_of_push_payloads(payload: dict[str, Any], expected: tuple[Any, Any]) -> None:
    branch, tag, what = refs(payload)
    assert (branch, tag) == expected
    named = branch or tag
    assert named is not None
    assert named in what


def test_refs_of_a_registry_notification_skip_pulls_and_untagged_pushes() -> None:
    payload = {
        "events": [
            {"action": "pull", "target": {"repository": "team/app", "tag": "old"}},
            {"action": "push", "target": {"repository": "team/app", "digest": "sha256:ab"}},
            "not an event",
            {"action": "push", "target": "not a target"},
            {"action": "push", "target": {"repository": "team/app", "tag": "2.0"}},
        ]
    }
    assert refs(payload)[:2] == (None, "2.0")


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [GITHUB_PUSH],
        "refs/heads/main",
        {},
        {"ref": 7},
        {"ref": "refs/pull/12/merge"},
        {"events": [{"action": "pull", "target": {"tag": "1.2"}}]},
        {"events": "push"},
        {"events": [{"action": "push", "target": {"tag": 12}}]},
    ],
)
def test_refs_of_other_payloads_name_neither(payload: Any) -> None:
    branch, tag, what = refs(payload)
    assert (branch, tag) == (None, None)
    assert what


# --- filters --------------------------------------------------------------------


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@pytest.mark.parametrize("filters", [None, WebhookFilters()], ids=["none", "empty"])
@pytest.mark.parametrize("body", [body_of(GITHUB_PUSH), b"not json", b""])
def test_no_filters_match_anything(filters: WebhookFilters | None, body: bytes) -> None:
    assert match(filters, read_payload(body)) == (True, "no filters")


@pytest.mark.parametrize(
    ("filters", "payload", "matched"),
    [
        ({"branch": "main"}, GITHUB_PUSH, True),
        ({"branch": "master"}, GITHUB_PUSH, False),
        ({"branch": "feature/*"}, GITEA_PUSH, True),
        ({"branch": "feature/x*"}, GITEA_PUSH, False),
        ({"branch": "release-?"}, GITLAB_PUSH, True),
        ({"branch": "release-[0-1]"}, GITLAB_PUSH, False),
        ({"branch": "Main"}, GITHUB_PUSH, False),  # case matters
        ({"tag": "v1.*"}, GITLAB_TAG_PUSH, True),
        ({"tag": "v2.*"}, GITLAB_TAG_PUSH, False),
        ({"tag": "v2.*"}, GITHUB_TAG_PUSH, True),
        ({"tag": "1.*"}, REGISTRY_PUSH, True),
        ({"tag": "2.*"}, REGISTRY_PUSH, False),
        # A branch filter is not met by a tag push, nor a tag filter by a branch push.
        ({"branch": "*"}, GITLAB_TAG_PUSH, False),
        ({"tag": "*"}, GITHUB_PUSH, False),
        # With both, each kind of push is held against its own glob.
        ({"branch": "main", "tag": "v*"}, GITHUB_PUSH, True),
        ({"branch": "main", "tag": "v*"}, GITLAB_TAG_PUSH, True),
        ({"branch": "main", "tag": "v*"}, GITLAB_PUSH, False),
        ({"branch": "main", "tag": "v*"}, REGISTRY_PUSH, False),
    ],
)
def test_filters(filters: dict[str, str], payload: dict[str, Any], matched: bool) -> None:
    ok, reason = match(WebhookFilters(**filters), payload)
    assert ok is matched, reason
    assert reason


def test_a_filtered_out_push_says_why() -> None:
    ok, reason = match(WebhookFilters(branch="main"), {"ref": "refs/heads/dev"})
    assert not ok
    assert "dev" in reason
    assert "'main'" in reason
    assert "does not match" in reason
    ok, reason = match(WebhookFilters(tag="v*"), REGISTRY_PUSH)
    assert not ok
    assert "1.2" in reason
    assert "'v*'" in reason


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"\xff\xfe\xfa",  # not UTF-8
        b"[1, 2]",
        b'"refs/heads/main"',
        b"[" * 100_000,  # nested deeper than the parser's recursion limit
        b'{"ref": ' * 50_000,
    ],
    ids=["text", "empty", "bytes", "array", "string", "deep-array", "deep-object"],
)
def test_a_body_without_refs_is_filtered_out_not_an_error(body: bytes) -> None:
    ok, reason = match(WebhookFilters(branch="main"), read_payload(body))
    assert ok is False
    assert reason


def test_a_non_json_body_is_filtered_out_and_says_so() -> None:
    ok, reason = match(WebhookFilters(branch="main"), read_payload(b"branch=main"))
    assert not ok
    assert "not a JSON object" in reason


# --- the verdict --------------------------------------------------------------------


DELIVERY_HEADER = {
    "github": "X-GitHub-Delivery",
    "gitea": "X-Gitea-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
    "generic": "X-Moorage-Delivery",
}
EVENT_HEADER = {
    "github": "X-GitHub-Event",
    "gitea": "X-Gitea-Event",
    "gitlab": "X-Gitlab-Event",
    "generic": "X-Moorage-Event",
}
SIGNATURE_HEADER = {
    "github": "X-Hub-Signature-256",
    "gitea": "X-Gitea-Signature",
    "gitlab": "X-Gitlab-Token",
    "generic": "X-Moorage-Signature",
}


def receive(config: dict[str, Any], headers: dict[str, str], body: bytes = BODY) -> Any:
    return WebhookTrigger().receive(config, HookRequest(headers=headers, body=body, source="x"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_receive_a_signed_push(provider: str) -> None:
    config = {"provider": provider, "secret": SECRET, "filters": {"branch": "main"}}
    headers = {
        SIGNATURE_HEADER[provider]: signed(provider, SECRET, BODY),  # as sent: mixed case
        DELIVERY_HEADER[provider]: "d-1",
        EVENT_HEADER[provider]: "push",
    }
    verdict = receive(config, headers)
    assert verdict.provider == provider
    assert verdict.signature == "valid"
    assert verdict.authentic
    assert verdict.matched
    assert verdict.delivery_id == "d-1"
    assert verdict.event == "push"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("event", ["ping", "push"])
def test_receive_refuses_a_bad_signature_before_anything_else(provider: str, event: str) -> None:
    config = {"provider": provider, "secret": SECRET}
    headers = {
        SIGNATURE_HEADER[provider]: signed(provider, "another-secret-entirely", BODY),
        EVENT_HEADER[provider]: event,
    }
    verdict = receive(config, headers)
    assert verdict.signature == "invalid"
    assert not verdict.authentic
    assert not verdict.matched
    assert SIGNATURE_HEADER[provider].lower() in verdict.reason
    del headers[SIGNATURE_HEADER[provider]]
    verdict = receive(config, headers)
    assert verdict.signature == "missing"
    assert not verdict.authentic


@pytest.mark.parametrize("provider", PROVIDERS)
def test_receive_a_ping_matches_nothing(provider: str) -> None:
    verdict = receive({"provider": provider}, {EVENT_HEADER[provider]: "ping"})
    assert verdict.signature == "unsigned"
    assert verdict.authentic
    assert not verdict.matched
    assert "ping" in verdict.reason


def test_receive_an_unsigned_trigger_accepts_anything() -> None:
    verdict = receive({"provider": "github"}, {}, b"whatever")
    assert verdict.signature == "unsigned"
    assert verdict.authentic
    assert verdict.matched
    assert verdict.delivery_id is None
    assert verdict.event == ""


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("event", ["push", "ping"])
@pytest.mark.parametrize("secret", [SECRET, "another-secret-entirely"])
def test_receive_bounds_what_it_keeps_from_headers(provider: str, event: str, secret: str) -> None:
    """Whatever the verdict, a delivery id and event fit their columns (128 and 64)."""
    config = {"provider": provider, "secret": SECRET}
    headers = {
        SIGNATURE_HEADER[provider]: signed(provider, secret, BODY),
        DELIVERY_HEADER[provider]: "d" * 5000,
        EVENT_HEADER[provider]: event + "x" * 5000 if event == "push" else event,
    }
    verdict = receive(config, headers)
    assert verdict.delivery_id is not None
    assert 0 < len(verdict.delivery_id) <= 128
    assert len(verdict.event) <= 64


def test_receive_reads_only_its_own_providers_delivery_header() -> None:
    headers = {"X-Gitea-Delivery": "gitea-id", "X-Moorage-Delivery": "generic-id"}
    assert receive({"provider": "github"}, headers).delivery_id is None
    assert receive({"provider": "gitea"}, headers).delivery_id == "gitea-id"
    assert receive({"provider": "generic"}, headers).delivery_id == "generic-id"


@pytest.mark.parametrize(
    "config",
    [
        {"provider": "bitbucket"},
        {"secret": "short"},
        {"secret": "x" * 257},
        {"filters": {"branch": ""}},
        {"filters": {"path": "src/*"}},
        {"rate_limit_per_minute": 0},
        {"rate_limit_per_minute": 10001},
        {"unknown": True},
    ],
)
def test_invalid_configs_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        WebhookTrigger().validate(config)
    assert caught.value.code == "invalid_config"


def test_config_defaults() -> None:
    model = WebhookConfig.model_validate({})
    assert model.provider == "generic"
    assert model.secret is None
    assert model.filters is None
    assert model.rate_limit_per_minute == 60


# --- deletions ----------------------------------------------------------------------------

ZEROS = "0" * 40
GITHUB_BRANCH_DELETED = {
    "ref": "refs/heads/feature/login",
    "before": "1" * 40,
    "after": ZEROS,
    "created": False,
    "deleted": True,
    "forced": False,
    "commits": [],
    "head_commit": None,
}
GITHUB_TAG_DELETED = {**GITHUB_BRANCH_DELETED, "ref": "refs/tags/v1.0.0"}
GITLAB_BRANCH_DELETED = {  # GitLab has no flag: ``after`` is zeros, ``checkout_sha`` null
    "object_kind": "push",
    "event_name": "push",
    "ref": "refs/heads/release-2",
    "before": "3" * 40,
    "after": ZEROS,
    "checkout_sha": None,
    "total_commits_count": 0,
}
GITLAB_TAG_DELETED = {
    **GITLAB_BRANCH_DELETED,
    "object_kind": "tag_push",
    "event_name": "tag_push",
    "ref": "refs/tags/v1.4.0",
}
GITEA_BRANCH_DELETED = {"ref": "refs/heads/dev", "before": "2" * 40, "after": ZEROS}
SHA256_BRANCH_DELETED = {"ref": "refs/heads/dev", "before": "2" * 64, "after": "0" * 64}


@pytest.mark.parametrize(
    ("event", "payload", "what"),
    [
        ("push", GITHUB_BRANCH_DELETED, "branch feature/login"),
        ("push", GITHUB_TAG_DELETED, "tag v1.0.0"),
        ("push", {**GITHUB_BRANCH_DELETED, "after": "1" * 40}, "branch feature/login"),
        ("Push Hook", GITLAB_BRANCH_DELETED, "branch release-2"),
        ("Tag Push Hook", GITLAB_TAG_DELETED, "tag v1.4.0"),
        ("push", GITEA_BRANCH_DELETED, "branch dev"),
        ("push", SHA256_BRANCH_DELETED, "branch dev"),
        # GitHub's and Gitea's delete events name the ref short, with its type.
        ("delete", {"ref": "dev", "ref_type": "branch", "pusher_type": "user"}, "branch dev"),
        ("delete", {"ref": "v2", "ref_type": "tag"}, "tag v2"),
        ("delete", {"ref": "x", "ref_type": "strange"}, "ref x"),
        ("delete", None, "ref (unnamed)"),
        (
            "",
            {"events": [{"action": "delete", "target": {"repository": "a", "tag": "1.2"}}]},
            "image tag 1.2",
        ),
        ("", {"events": [{"action": "delete", "target": {"digest": "sha256:ab"}}]}, "an image"),
    ],
)
def test_a_deletion_is_recognised(event: str, payload: Any, what: str) -> None:
    assert deletion(event, payload) == what


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("push", GITHUB_PUSH),  # ``before`` zeros: a created branch is a push to deploy
        ("push", GITLAB_PUSH),
        ("push", {**GITHUB_PUSH, "deleted": False}),
        ("push", {**GITHUB_PUSH, "deleted": "true"}),  # only JSON true is the flag
        ("push", {**GITHUB_PUSH, "after": "0" * 39}),
        ("push", {**GITHUB_PUSH, "after": "0" * 41}),
        ("push", {"after": ZEROS}),  # no ref: not a push
        ("push", REGISTRY_PUSH),
        ("", {"events": [{"action": "push"}, {"action": "delete"}]}),
        ("", {"events": [{"action": "pull"}]}),
        ("push", None),
        ("push", [GITHUB_BRANCH_DELETED]),
        ("ping", {}),
    ],
)
def test_other_deliveries_delete_nothing(event: str, payload: Any) -> None:
    assert deletion(event, payload) is None


def test_a_deleted_name_is_quoted_on_one_bounded_line() -> None:
    what = deletion("push", {**GITHUB_BRANCH_DELETED, "ref": "refs/heads/a\nb" + "c" * 1000})
    assert what is not None
    assert "\n" not in what
    assert len(what) <= 255


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "payload", [GITHUB_BRANCH_DELETED, GITLAB_TAG_DELETED], ids=["branch", "tag"]
)
def test_receive_a_deletion_matches_nothing_even_when_the_filter_does(
    provider: str, payload: dict[str, Any]
) -> None:
    body = body_of(payload)
    filters = {"branch": "*", "tag": "*"}
    for config in (
        {"provider": provider, "secret": SECRET, "filters": filters},
        {"provider": provider, "secret": SECRET},  # no filters: still nothing
    ):
        headers = {SIGNATURE_HEADER[provider]: signed(provider, SECRET, body)}
        verdict = receive(config, headers, body)
        assert verdict.signature == "valid"
        assert not verdict.matched
        assert "was deleted: nothing to deploy" in verdict.reason
        assert deletion("push", payload) in verdict.reason


def test_receive_a_delete_event_matches_nothing() -> None:
    body = body_of({"ref": "main", "ref_type": "branch"})
    verdict = receive({"provider": "github"}, {"X-GitHub-Event": "delete"}, body)
    assert not verdict.matched
    assert verdict.reason == "branch main was deleted: nothing to deploy"


# --- form-encoded deliveries -----------------------------------------------------------


def form(payload: dict[str, Any]) -> bytes:
    """A body as GitHub and Gitea send it with the form content type."""
    return urlencode({"payload": json.dumps(payload)}).encode()


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_form_field_is_read_back_to_its_exact_bytes() -> None:
    text = '{"ref": "refs/heads/main", "message": "a+b & c=d %20 \u00e9"}'
    body = urlencode({"other": "x", "payload": text}).encode()
    assert form_field(body, b"payload") == text.encode()
    assert form_field(body, b"missing") is None
    assert form_field(b"payload=%zz", b"payload") == b"%zz"  # a broken escape stays as sent


def test_github_signs_the_form_body_as_sent() -> None:
    body = form(GITHUB_PUSH)
    headers = {"x-hub-signature-256": signed("github", SECRET, body), "content-type": FORM}
    assert check_signature("github", SECRET, headers, body) == "valid"
    headers["x-hub-signature-256"] = signed("github", SECRET, body_of(GITHUB_PUSH))
    assert check_signature("github", SECRET, headers, body) == "invalid"


def test_gitea_signs_the_json_a_form_carries() -> None:
    text = body_of(GITEA_PUSH)
    body = urlencode({"payload": text.decode()}).encode()
    headers = {"x-gitea-signature": signed("gitea", SECRET, text), "content-type": FORM}
    assert check_signature("gitea", SECRET, headers, body) == "valid"
    headers["x-gitea-signature"] = signed("gitea", SECRET, body)
    assert check_signature("gitea", SECRET, headers, body) == "invalid"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
    ],
)
def test_receive_a_signed_github_form_push(content_type: str) -> None:
    config = {"provider": "github", "secret": SECRET, "filters": {"branch": "main"}}
    body = form(GITHUB_PUSH)
    headers = {"X-Hub-Signature-256": signed("github", SECRET, body), "Content-Type": content_type}
    verdict = receive(config, headers, body)
    assert verdict.signature == "valid"
    assert verdict.matched, verdict.reason
    assert "branch main matches" in verdict.reason
    dev = form({**GITHUB_PUSH, "ref": "refs/heads/dev"})
    headers["X-Hub-Signature-256"] = signed("github", SECRET, dev)
    verdict = receive(config, headers, dev)
    assert not verdict.matched
    assert "dev" in verdict.reason


def test_receive_a_form_deletion_matches_nothing() -> None:
    body = form(GITHUB_BRANCH_DELETED)
    headers = {"X-Hub-Signature-256": signed("github", SECRET, body), **FORM_HEADERS}
    verdict = receive({"provider": "github", "secret": SECRET}, headers, body)
    assert verdict.signature == "valid"
    assert not verdict.matched
    assert "branch feature/login was deleted" in verdict.reason


@pytest.mark.parametrize(
    "body",
    [b"", b"payload=", b"payload=not%20json", b"other=1", b"%ff%fe=%ff", b"&&&=&="],
)
def test_a_form_without_a_json_payload_is_filtered_out_not_an_error(body: bytes) -> None:
    verdict = receive({"provider": "github", "filters": {"branch": "main"}}, FORM_HEADERS, body)
    assert not verdict.matched
    assert "not a JSON object" in verdict.reason


def test_a_json_body_is_not_read_as_a_form() -> None:
    body = b"payload=" + body_of(GITHUB_PUSH)
    verdict = receive(
        {"provider": "github", "filters": {"branch": "main"}},
        {"Content-Type": "application/json"},
        body,
    )
    assert not verdict.matched


# --- the pushed commit on a delivery (issue 15) ------------------------------------------

SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # GitHub / Gitea: head_commit with its message
        (
            {"after": SHA, "head_commit": {"id": SHA, "message": "Fix login\n\nlong body"}},
            (SHA, "Fix login"),
        ),
        # GitLab: checkout_sha and the commit among commits[]
        (
            {
                "after": SHA,
                "checkout_sha": SHA,
                "commits": [{"id": "a" * 40, "message": "older"}, {"id": SHA, "message": "Bump"}],
            },
            (SHA, "Bump"),
        ),
        # A generic sender with only `after`
        ({"after": SHA.upper()}, (SHA, None)),
        # A deleting push: zeros (SHA-1 and SHA-256 widths)
        ({"after": "0" * 40}, (None, None)),
        ({"after": "0" * 64, "head_commit": None}, (None, None)),
        # Not an object name: refused, not shown
        ({"after": "main; rm -rf /"}, (None, None)),
        ({"after": "abc"}, (None, None)),
        ({"head_commit": {"id": 42, "message": "x"}}, (None, None)),
        ("not an object", (None, None)),
        # A hostile message: one line, escaped, bounded
        (
            {"head_commit": {"id": SHA, "message": "\x1b[31mred\x1b[0m " + "y" * 500}},
            (SHA, "hostile"),
        ),
    ],
)
def test_the_pushed_commit_is_read_from_each_providers_shape(
    payload: Any, expected: tuple[str | None, str | None]
) -> None:
    sha, title = pushed_commit(payload)
    assert sha == expected[0]
    if expected[1] == "hostile":
        assert title is not None and "\x1b" not in title and len(title) <= 200
        assert title.endswith("y")
    else:
        assert title == expected[1]
