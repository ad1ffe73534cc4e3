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
     ├── DeployFailed          a deploy did not become healthy (recorded, not raised to HTTP)
     ├── PluginError           a broken or duplicate plugin (start-up error)
     └── ConfigError           a bad MOORAGE_* setting (start-up error)
"""

from __future__ import annotations

import errno
import math
import os
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


class DeployFailed(MoorageError):
    code = "deploy_failed"


class PluginError(MoorageError):
    code = "plugin_error"


class ConfigError(MoorageError):
    code = "config_error"
