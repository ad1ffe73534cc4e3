"""The ``webhook`` trigger kind: ``POST /hooks/{token}``, optionally signed.

Signatures are checked in constant time in each provider's format; filters on
branch and tag are understood for GitHub, Gitea and GitLab pushes and for
registry (Docker distribution) notifications, sent as JSON or as a form with the
JSON in its ``payload`` field (GitHub's default content type; Gitea offers it too).
A push that deletes its branch or tag, and a ``delete`` event, deploy nothing.
``receive`` never raises on a hostile request: it answers a verdict.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import hmac
import json
import re
from typing import Any, ClassVar, Literal
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from moorage.plugins.kind_config import validate_config
from moorage.plugins.spec import HookRequest, HookVerdict
from moorage.store.states import DeliverySignature
from moorage.text import escape

Provider = Literal["github", "gitea", "gitlab", "generic"]

# Where each provider puts its signature and its delivery id.
SIGNATURE_HEADER = {
    "github": "x-hub-signature-256",
    "gitea": "x-gitea-signature",
    "gitlab": "x-gitlab-token",
    "generic": "x-moorage-signature",
}
DELIVERY_HEADER = {
    "github": "x-github-delivery",
    "gitea": "x-gitea-delivery",
    "gitlab": "x-gitlab-event-uuid",
    "generic": "x-moorage-delivery",
}
EVENT_HEADER = {
    "github": "x-github-event",
    "gitea": "x-gitea-event",
    "gitlab": "x-gitlab-event",
    "generic": "x-moorage-event",
}
FORM = "application/x-www-form-urlencoded"
# The object name a push reports as ``after`` when it deleted the ref: SHA-1 or SHA-256 zeros.
NO_COMMIT = re.compile(r"0{40}(?:0{24})?")


class WebhookFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch: str | None = Field(
        default=None, min_length=1, max_length=255, description="Glob on the pushed branch"
    )
    tag: str | None = Field(
        default=None, min_length=1, max_length=255, description="Glob on the pushed tag"
    )


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider = "generic"
    secret: SecretStr | None = Field(
        default=None, min_length=8, max_length=256, description="Shared secret for signatures"
    )
    filters: WebhookFilters | None = None
    rate_limit_per_minute: int = Field(
        default=60, ge=1, le=10000, description="Calls accepted per minute before 429"
    )


def hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_form(headers: dict[str, str]) -> bool:
    """Whether the body is ``application/x-www-form-urlencoded`` (``headers`` lower-cased)."""
    return headers.get("content-type", "").split(";")[0].strip().lower() == FORM


def form_field(body: bytes, name: bytes) -> bytes | None:
    """The first ``name`` field of a form body, decoded to its exact bytes."""
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == name:
            return unquote_to_bytes(value.replace(b"+", b" "))
    return None


def document(headers: dict[str, str], body: bytes) -> bytes:
    """The JSON a delivery carries: the body, or a form's ``payload`` field (empty if none)."""
    if is_form(headers):
        return form_field(body, b"payload") or b""
    return body


def read_payload(text: bytes) -> Any:
    """The parsed JSON document, or None when it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a hostile, deeply nested body
        return None


def signed_bytes(provider: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes a provider's signature covers: Gitea's the JSON document (a form's
    ``payload`` field), the others' the body as sent (GitLab's token covers nothing: its
    body is the replay guard's key, as the others')."""
    return document(headers, body) if provider == "gitea" else body


def check_signature(
    provider: str,
    secret: str | None,
    headers: dict[str, str],
    body: bytes,
) -> DeliverySignature:
    """``unsigned`` without a secret; else ``valid``, ``invalid`` or ``missing``.

    GitHub signs the body as sent, a form too; Gitea signs the JSON document, which a
    form carries in its ``payload`` field."""
    if not secret:
        return DeliverySignature.UNSIGNED
    sent = headers.get(SIGNATURE_HEADER[provider])
    if not sent:
        return DeliverySignature.MISSING
    if provider == "gitlab":
        expected = secret  # GitLab sends the shared token itself
    elif provider == "gitea":
        expected = hmac_sha256(secret, signed_bytes(provider, headers, body))
    else:
        expected = "sha256=" + hmac_sha256(secret, signed_bytes(provider, headers, body))
    if hmac.compare_digest(sent.encode(), expected.encode()):
        return DeliverySignature.VALID
    return DeliverySignature.INVALID


def refs(payload: Any) -> tuple[str | None, str | None, str]:
    """(branch, tag, what) from a push payload or a registry notification."""
    if not isinstance(payload, dict):
        return None, None, "the body is not a JSON object"
    ref = payload.get("ref")
    if isinstance(ref, str):
        if ref.startswith("refs/heads/"):
            return ref.removeprefix("refs/heads/"), None, f"branch {ref[11:]}"
        if ref.startswith("refs/tags/"):
            return None, ref.removeprefix("refs/tags/"), f"tag {ref[10:]}"
        return None, None, f"ref {ref}"
    events = payload.get("events")
    if isinstance(events, list):
        for event in events:
            target = event.get("target") if isinstance(event, dict) else None
            if isinstance(target, dict) and event.get("action") == "push":
                tag = target.get("tag")
                if isinstance(tag, str):
                    return None, tag, f"image tag {tag}"
    return None, None, "no branch or tag in the payload"


def deletion(event: str, payload: Any) -> str | None:
    """What a delivery deleted (``branch main``, ``tag v1``), or None when it deleted nothing.

    GitHub marks a deleting push ``"deleted": true``; GitHub, Gitea and GitLab all send
    its ``after`` as zeros (GitLab's branch and tag pushes have no flag); GitHub and Gitea
    also send a ``delete`` event with ``ref_type`` and the short ref name; a registry
    notifies ``delete`` actions."""
    body = payload if isinstance(payload, dict) else {}
    ref = body.get("ref")
    if event.lower() == "delete":
        kind = body.get("ref_type")
        named = _shown(ref) if isinstance(ref, str) else "(unnamed)"
        return f"{kind if kind in ('branch', 'tag') else 'ref'} {named}"
    if isinstance(ref, str):
        after = body.get("after")
        if body.get("deleted") is True or (isinstance(after, str) and NO_COMMIT.fullmatch(after)):
            return _shown(refs(body)[2])
        return None
    events = body.get("events")
    if isinstance(events, list):
        deletes = [e for e in events if isinstance(e, dict) and e.get("action") == "delete"]
        if deletes and not any(isinstance(e, dict) and e.get("action") == "push" for e in events):
            target = deletes[0].get("target")
            tag = target.get("tag") if isinstance(target, dict) else None
            return f"image tag {_shown(tag)}" if isinstance(tag, str) else "an image"
    return None


OBJECT_NAME = re.compile(r"[0-9a-f]{7,64}")


def pushed_commit(payload: Any) -> tuple[str | None, str | None]:
    """(object name, first line of the message) of the commit a push delivered.

    GitHub and Gitea send ``head_commit: {id, message}`` and ``after``; GitLab sends
    ``checkout_sha``, ``after`` and ``commits: [{id, message}]``. A deleting push (zeros)
    or a payload without one gives ``(None, None)``. Both are checked and bounded: they
    come from the sender."""
    body: dict[str, Any] = payload if isinstance(payload, dict) else {}
    given = body.get("head_commit")
    head: dict[str, Any] = given if isinstance(given, dict) else {}
    candidates = (head.get("id"), body.get("checkout_sha"), body.get("after"))
    sha = next(
        (c.lower() for c in candidates if isinstance(c, str) and OBJECT_NAME.fullmatch(c.lower())),
        None,
    )
    if sha is None or NO_COMMIT.fullmatch(sha):
        return None, None
    message = head.get("message") if head.get("id", sha) == sha else None
    if message is None and isinstance(body.get("commits"), list):
        message = next(
            (
                c.get("message")
                for c in body["commits"]
                if isinstance(c, dict) and c.get("id") == sha
            ),
            None,
        )
    title = None
    if isinstance(message, str) and message.strip():
        title = escape(message.strip().splitlines()[0])[:200]
    return sha, title


def _shown(name: str) -> str:
    """A name from a payload as a reason quotes it: one line, bounded."""
    return escape(name)[:255]


def match(filters: WebhookFilters | None, payload: Any) -> tuple[bool, str]:
    """Whether a parsed payload passes the filters, and why."""
    if filters is None or (filters.branch is None and filters.tag is None):
        return True, "no filters"
    branch, tag, what = refs(payload)
    if filters.branch is not None and branch is not None:
        ok = fnmatch.fnmatchcase(branch, filters.branch)
        return ok, f"{what} {'matches' if ok else 'does not match'} {filters.branch!r}"
    if filters.tag is not None and tag is not None:
        ok = fnmatch.fnmatchcase(tag, filters.tag)
        return ok, f"{what} {'matches' if ok else 'does not match'} {filters.tag!r}"
    return False, f"{what}: not what the filters ask for"


class WebhookTrigger:
    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    description: ClassVar[str] = "Deploys when its URL is called, e.g. by a Git push."
    uses_token: ClassVar[bool] = True

    def sample(self) -> dict[str, Any]:
        return {"provider": "github", "secret": "change-me-please", "filters": {"branch": "main"}}

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, WebhookConfig, config)

    def receive(self, config: dict[str, Any], request: HookRequest) -> HookVerdict:
        model = WebhookConfig.model_validate(config)
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = model.secret.get_secret_value() if model.secret else None
        signature = check_signature(model.provider, secret, headers, request.body)
        verdict = self._judge(model, headers, request.body, signature)
        if signature != DeliverySignature.VALID:
            return verdict
        signed = signed_bytes(model.provider, headers, request.body)
        return dataclasses.replace(verdict, signed_sha256=hashlib.sha256(signed).hexdigest())

    def _judge(
        self,
        model: WebhookConfig,
        headers: dict[str, str],
        body: bytes,
        signature: DeliverySignature,
    ) -> HookVerdict:
        """The verdict on a call whose signature was checked (``receive``)."""
        # Escaped and bounded here, once, for every verdict: they go into the delivery log
        # (whose columns hold 64 and 128) and into log lines.
        event = escape(headers.get(EVENT_HEADER[model.provider], ""))[:64]
        delivery = escape(headers.get(DELIVERY_HEADER[model.provider], ""))[:128] or None
        if signature in (DeliverySignature.INVALID, DeliverySignature.MISSING):
            header = SIGNATURE_HEADER[model.provider]
            return HookVerdict(
                model.provider,
                event,
                delivery,
                signature,
                False,
                f"{signature} signature in {header}",
            )
        if event.lower() == "ping":
            return HookVerdict(
                model.provider, event, delivery, signature, False, "ping event: nothing to deploy"
            )
        payload = read_payload(document(headers, body))
        deleted = deletion(event, payload)
        if deleted is not None:
            reason = f"{deleted} was deleted: nothing to deploy"
            return HookVerdict(model.provider, event, delivery, signature, False, reason)
        matched, reason = match(model.filters, payload)
        sha, title = pushed_commit(payload)
        return HookVerdict(model.provider, event, delivery, signature, matched, reason, sha, title)
