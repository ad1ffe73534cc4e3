"""The one exception tree of Moorage.

Domain code raises these; ``moorage.api.errors`` alone maps them to HTTP status
codes and JSON, and the CLI prints their message on one line. Nothing here may
import FastAPI or know about HTTP.

    MoorageError
     ├── InvalidInput          bad input from a person or client (422)
     │   └── ArchiveInvalid    a snapshot archive that breaks a reading rule (422)
     ├── NotFound              the named object does not exist (404)
     ├── Conflict              the request clashes with current state (409)
     ├── PayloadTooLarge       a request body over its cap (413)
     ├── Unauthenticated       no or bad credentials (401)
     ├── Forbidden             credentials fine, role too low (403)
     ├── PreconditionRequired  a required confirmation is missing (428)
     ├── RetryLater            a refusal that says when to try again (``retry_after`` s)
     │   ├── TooManyRequests   too many attempts (429)
     │   └── Busy              at a bound kept on purpose (503)
     ├── DiskFull              no space (or quota) left on a disk Moorage writes to (507)
     ├── EngineError           the container engine refused or failed (502)
     │   └── EngineUnavailable the engine cannot be reached at all (503)
     ├── DumpFailed            the store's dump tool (pg_dump, pg_restore) failed (502)
     ├── DeployFailed          a deploy did not become healthy (recorded, not raised to HTTP)
     ├── PluginError           a broken or duplicate plugin (start-up error)
     └── ConfigError           a bad MOORAGE_* setting (start-up error)

Every ``code`` an answer can carry is declared once, in ``CODES``: its status and what it
means. A raise names its code (``Conflict(..., code="workload_busy")``); a test walks the
source and fails on a code ``CODES`` lacks or a status its class would not answer, and the
UI's catalogs must name each one. ``error_body`` is the one shape of an error answer.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from typing import Any


class MoorageError(Exception):
    """Base of every error Moorage raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(MoorageError):
    code = "invalid_input"


class ArchiveInvalid(InvalidInput):
    code = "invalid_archive"


class NotFound(MoorageError):
    code = "not_found"


class Conflict(MoorageError):
    code = "conflict"


class PayloadTooLarge(MoorageError):
    code = "payload_too_large"


class Unauthenticated(MoorageError):
    code = "unauthenticated"


class Forbidden(MoorageError):
    code = "forbidden"


class PreconditionRequired(MoorageError):
    code = "precondition_required"


class RetryLater(MoorageError):
    """Base of the refusals that name when to try again (``retry_after``, whole seconds)."""

    def __init__(self, message: str, *, retry_after: float = 1, code: str | None = None) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, code=code, details={"retry_after": seconds})
        self.retry_after = seconds


class TooManyRequests(RetryLater):
    code = "too_many_requests"


class Busy(RetryLater):
    code = "busy"


class DiskFull(MoorageError):
    code = "disk_full"

    @classmethod
    def of(cls, exc: OSError, where: str, then: str) -> DiskFull | None:
        """The error saying which disk is full, for an ``OSError`` that says so (ENOSPC,
        or EDQUOT: a spent quota); None for any other. ``then``: what to do after."""
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return None
        what = "no space" if exc.errno == errno.ENOSPC else "no quota"
        try:
            st = os.statvfs(where)
            free = f" ({st.f_bavail * st.f_frsize // 2**20} MiB free of "
            free += f"{st.f_blocks * st.f_frsize // 2**20} MiB)"
        except OSError:
            free = ""
        return cls(
            f"{what} left on the disk holding {where}{free}: free some space there, {then}",
            details={"path": where},
        )


class EngineError(MoorageError):
    code = "engine_error"


class EngineUnavailable(EngineError):
    code = "engine_unavailable"


class TargetError(MoorageError):
    """A storage target (SPEC section 11) refused, failed or could not be reached; the
    message names the target's host or path and what to check."""

    code = "target_error"


class DumpFailed(MoorageError):
    """The store's own dump or load tool failed (SPEC section 11); the message quotes it."""

    code = "dump_failed"


class DeployFailed(MoorageError):
    code = "deploy_failed"


class PluginError(MoorageError):
    code = "plugin_error"


class ConfigError(MoorageError):
    code = "config_error"


@dataclass(frozen=True)
class ErrorCode:
    status: int
    """The HTTP status it is answered with (``api/errors.py`` maps the raised class to it)."""
    meaning: str


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """An error answer's JSON, wherever it is made (the exception handlers, the middleware
    that answers before routing, the webhook endpoint): ``{"error": {code, message,
    details}}``. ``ErrorOut`` in ``api/schemas/base.py`` describes it in the OpenAPI document."""
    return {"error": {"code": code, "message": message, "details": details}}


CODES: dict[str, ErrorCode] = {
    # 400, 404-416, 431: refused by the HTTP layer before a route runs
    "bad_request": ErrorCode(
        400, "the request could not be parsed (broken HTTP, a broken multipart form or Range)"
    ),
    "not_found": ErrorCode(404, "no such endpoint, or no such object"),
    "method_not_allowed": ErrorCode(405, "the path exists, but not with this method"),
    "not_acceptable": ErrorCode(406, "no answer in a content type the client accepts"),
    "unsupported_media_type": ErrorCode(415, "a body of a content type the route does not read"),
    "http_error": ErrorCode(400, "another refusal of the HTTP layer (with the status it chose)"),
    "payload_too_large": ErrorCode(413, "a request body over its cap (1 MiB, or an archive's)"),
    "request_timeout": ErrorCode(408, "a request body that did not arrive within 30 s"),
    "uri_too_long": ErrorCode(414, "a query string over 8 KiB or 100 parameters"),
    "range_not_satisfiable": ErrorCode(416, "a Range past the end of the file"),
    "headers_too_large": ErrorCode(431, "over 100 header lines or 16 KiB of them"),
    "ui_not_built": ErrorCode(404, "the web UI is not built; the API works"),
    # 401
    "unauthenticated": ErrorCode(401, "no credentials: log in or send a bearer token"),
    "invalid_token": ErrorCode(401, "an API token (or Authorization header) that is not valid"),
    "bad_credentials": ErrorCode(401, "wrong username or password"),
    "session_expired": ErrorCode(401, "the session cookie's session has ended"),
    "bad_signature": ErrorCode(401, "a webhook call whose signature is missing or wrong"),
    # 403
    "forbidden": ErrorCode(403, "the role is too low for this, or only an admin may"),
    "csrf_failed": ErrorCode(403, "a cookie-session request without its X-CSRF-Token"),
    "needs_admin": ErrorCode(403, "only an admin may grant the host powers this asks of Docker"),
    # 404
    "unknown_hook": ErrorCode(404, "no webhook trigger has this URL token"),
    # 409
    "conflict": ErrorCode(409, "the request clashes with the current state"),
    "duplicate": ErrorCode(409, "the name (or ref_id) is taken"),
    "already_bound": ErrorCode(409, "the trigger is already bound to this workload"),
    "stage_in_use": ErrorCode(409, "a stage to remove still has workloads"),
    "project_not_empty": ErrorCode(409, "the project still has workloads"),
    "has_snapshots": ErrorCode(409, "the workload has snapshots: delete them or purge them too"),
    "has_volumes": ErrorCode(
        409, "the workload's Docker volumes hold data: copy it out, or purge them too"
    ),
    "last_admin": ErrorCode(409, "the last admin cannot be demoted or deleted"),
    "own_account": ErrorCode(409, "no one deletes their own account"),
    "token_limit": ErrorCode(409, "the user holds the most API tokens one may: revoke one first"),
    "workload_busy": ErrorCode(409, "another change of the workload held its lock too long"),
    "nothing_to_promote": ErrorCode(409, "the source workload never deployed successfully"),
    "not_deployed": ErrorCode(409, "no successful deployment to restart"),
    "volume_in_use": ErrorCode(409, "another workload mounts the directory (not both shared)"),
    "volume_nested": ErrorCode(409, "two volumes' directories are nested"),
    "port_in_use": ErrorCode(409, "another workload publishes this fixed host port"),
    "domain_taken": ErrorCode(409, "another workload has this host (details name it)"),
    "target_in_use": ErrorCode(409, "a backup schedule or off-site policy uses the target"),
    "dns_provider_in_use": ErrorCode(409, "domains or kept records still use the provider"),
    "snapshot_busy": ErrorCode(409, "the snapshot is still being captured"),
    "not_ready": ErrorCode(409, "the snapshot has no complete archive (still capturing, failed)"),
    "restore_running": ErrorCode(409, "a restore of the workload (or from the snapshot) runs"),
    "data_dir_not_empty": ErrorCode(
        409, "an instance restore into a data dir or database that has a store"
    ),
    "workload_unknown": ErrorCode(
        409, "an off-site copy of a workload this instance does not have"
    ),
    "archive_missing": ErrorCode(409, "the snapshot's archive file is gone"),
    "checksum_mismatch": ErrorCode(409, "the archive no longer matches its size and SHA-256"),
    "volume_mismatch": ErrorCode(409, "a volume of the snapshot is not the workload's now"),
    "missing_target": ErrorCode(409, "a volume's live directory does not exist"),
    "not_a_dir": ErrorCode(409, "a volume's live path is not a plain directory"),
    "mount_point": ErrorCode(409, "a volume's live directory is a mount point: no swap"),
    "shared_volume": ErrorCode(409, "another workload mounts a volume a restore would replace"),
    "no_space": ErrorCode(409, "too little space or inodes beside a volume for the restore"),
    "no_exchange": ErrorCode(409, "MOORAGE_RESTORE_SWAP=exchange, but RENAME_EXCHANGE fails"),
    # 422
    "invalid_input": ErrorCode(422, "bad input"),
    "invalid_key": ErrorCode(422, "an object key a storage target may not hold"),
    "wrong_passphrase": ErrorCode(422, "a storage target's key does not open with it"),
    "target_moved": ErrorCode(422, "a storage target's place (host, bucket, path) never changes"),
    "credentials_required": ErrorCode(422, "a change of where credentials go must resend them"),
    "invalid_request": ErrorCode(422, "the body or a parameter fails its schema (details: fields)"),
    "invalid_text": ErrorCode(422, "a string holds a character its field does not take"),
    "invalid_config": ErrorCode(422, "a kind's config fails its schema (or Compose refuses it)"),
    "invalid_slug": ErrorCode(422, "a name that is not 1-63 lower-case letters, digits or '-'"),
    "invalid_stages": ErrorCode(422, "a project's stages: none, too many or twice"),
    "invalid_username": ErrorCode(422, "a username that breaks the naming rule"),
    "invalid_role": ErrorCode(422, "a role that is not viewer, operator or admin"),
    "weak_password": ErrorCode(422, "a password shorter than the minimum"),
    "invalid_token_name": ErrorCode(422, "an API token's name is empty or too long"),
    "invalid_ref_id": ErrorCode(422, "a ref_id that breaks its rule"),
    "invalid_env": ErrorCode(422, "an environment variable's name, value or count"),
    "invalid_volume": ErrorCode(422, "a volume's name, scope, source or target breaks a rule"),
    "invalid_domain": ErrorCode(422, "a host that is not a DNS name, given twice, or too many"),
    "port_not_exposed": ErrorCode(422, "a domain names a port the workload does not publish"),
    "wildcard_needs_dns": ErrorCode(422, "a wildcard domain names no DNS provider (DNS-01)"),
    "dns_provider_unknown": ErrorCode(422, "a domain names a DNS provider that does not exist"),
    "dns_needs_admin": ErrorCode(403, "only an admin may add or remove a domain with a provider"),
    "unknown_service": ErrorCode(422, "the Compose file has no service of that name"),
    "invalid_hook": ErrorCode(422, "a capture hook's command, service or timeout breaks a rule"),
    "invalid_checkpoint": ErrorCode(422, "checkpoint is neither none nor before-deploy"),
    "no_checkpoint": ErrorCode(409, "no checkpoint holds the data of that deployment"),
    "not_rollbackable": ErrorCode(409, "the deployment did not succeed; nothing to roll back to"),
    "invalid_chain": ErrorCode(422, "a chain lists a workload twice, or too many"),
    "chain_cycle": ErrorCode(422, "the chain would loop"),
    "invalid_promote": ErrorCode(422, "a promote between workloads that cannot share artifacts"),
    "invalid_binding": ErrorCode(422, "a bind names neither an existing trigger nor a new one"),
    "invalid_retention": ErrorCode(422, "keep_last out of range"),
    "invalid_mode": ErrorCode(422, "a capture mode other than stop, pause or none"),
    "invalid_archive": ErrorCode(422, "an archive that breaks a reading rule (details say which)"),
    "unknown_kind": ErrorCode(422, "no installed plugin has this kind"),
    "unknown_project": ErrorCode(422, "the workload's project does not exist"),
    "unknown_stage": ErrorCode(422, "the stage is not one of the project's"),
    "unknown_workload": ErrorCode(422, "a workload the request names does not exist"),
    "unknown_trigger": ErrorCode(422, "the trigger to bind does not exist"),
    "backup_unsupported": ErrorCode(
        422, "an instance backup or restore of a store it does not cover"
    ),
    "unknown_target": ErrorCode(422, "the storage target the request names does not exist"),
    "unknown_volume": ErrorCode(422, "a volume name the workload (or snapshot) does not have"),
    "no_volumes": ErrorCode(422, "the workload has no volumes to snapshot"),
    "volumes_unsupported": ErrorCode(422, "the kind mounts no Moorage volumes"),
    "no_token": ErrorCode(422, "the trigger's kind has no URL token to regenerate"),
    # 428
    "precondition_required": ErrorCode(428, "a required confirmation is missing"),
    "confirmation_required": ErrorCode(428, "a restore needs X-Confirm-Restore: <workload name>"),
    # 429
    "too_many_requests": ErrorCode(429, "too many attempts; Retry-After says when to try again"),
    "login_backoff": ErrorCode(429, "too many failed logins for the account or address"),
    "rate_limited": ErrorCode(429, "a webhook trigger called more often than its limit"),
    # 500, 502, 503, 507
    "internal": ErrorCode(500, "a bug: the server log has the traceback"),
    "error": ErrorCode(500, "a MoorageError raised without a subclass (a bug if it is answered)"),
    "deploy_failed": ErrorCode(500, "a deploy did not come up healthy (recorded on the row)"),
    "plugin_error": ErrorCode(500, "a broken or duplicate plugin (a start-up error)"),
    "config_error": ErrorCode(500, "a bad MOORAGE_* setting (a start-up error)"),
    "engine_error": ErrorCode(502, "the container engine refused or failed"),
    "engine_unavailable": ErrorCode(503, "the container engine cannot be reached"),
    "target_error": ErrorCode(502, "a storage target refused or failed"),
    "target_unreachable": ErrorCode(502, "a storage target's host or path cannot be reached"),
    "target_auth_failed": ErrorCode(502, "a storage target refused the stored credentials"),
    "target_object_missing": ErrorCode(502, "the storage target holds no object of that key"),
    "dump_failed": ErrorCode(502, "the dump or load of the store failed (its error quoted)"),
    "copy_corrupt": ErrorCode(502, "an off-site copy that does not decrypt (key or bytes)"),
    "busy": ErrorCode(
        503,
        "at a bound kept on purpose (password checks, open connections, request bodies held "
        "at once); retry shortly",
    ),
    "disk_full": ErrorCode(507, "no space or quota left where Moorage writes"),
}
