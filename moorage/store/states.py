"""Every status, phase, origin and mode a row or an API body carries, as one ``StrEnum`` each.

The tables store them as plain strings (``tables.State``: the same ``VARCHAR`` columns and
values as before, so no migration), the API's schemas declare them (the OpenAPI document
carries each as a named enum the UI's generated types read), and code compares and assigns
the members, never bare strings. A member equals its string, so JSON and SQL see no change.

Pure: no SQLAlchemy, no I/O; the CLI and the plugin contract may import it.
"""

from __future__ import annotations

from enum import StrEnum


class DesiredState(StrEnum):
    """What reconcile keeps a workload at; set by stop, start, restart and a deploy."""

    RUNNING = "running"
    STOPPED = "stopped"


class WorkloadStatus(StrEnum):
    """A workload as last observed (``SourceKind.status``, or the deployer's own word)."""

    NEVER_DEPLOYED = "never_deployed"
    DEPLOYING = "deploying"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """The engine could not tell (unreachable, or the kind could not look)."""


class DeploymentStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """It was running when the server stopped; start-up recovery ends it so."""


DEPLOYMENT_PENDING = frozenset({DeploymentStatus.QUEUED, DeploymentStatus.RUNNING})
"""Not finished yet: a deployment in one of these may still change what runs."""


class SnapshotStatus(StrEnum):
    CAPTURING = "capturing"
    READY = "ready"
    FAILED = "failed"


class CopyStatus(StrEnum):
    """An off-site copy of a snapshot on one storage target (SPEC section 11)."""

    PENDING = "pending"
    COPYING = "copying"
    VERIFIED = "verified"
    FAILED = "failed"
    PRUNED = "pruned"
    """Retention removed it from the target: it is never copied there again by the
    catch-up pass, counts as kept for the stale alert, and is not shown on the API."""


class SnapshotOrigin(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    IMPORT = "import"
    PRE_RESTORE = "pre-restore"
    """The data a restore replaced, packed after it."""
    RECOVERY_POINT = "recovery-point"
    """One of a project stage's snapshots taken at one instant (SPEC section 10)."""
    CHECKPOINT = "checkpoint"
    """Taken by a deploy right before it changes anything (SPEC section 10)."""


RETENTION_GROUPS: tuple[tuple[SnapshotOrigin, ...], ...] = (
    (SnapshotOrigin.MANUAL, SnapshotOrigin.SCHEDULED),
    (SnapshotOrigin.CHECKPOINT,),
)
"""The origins ``keep_last`` prunes, and it counts each group apart: a deploy's
checkpoints never push out a capture a person or a schedule took (the attacker pass
lost a manual snapshot, and then its off-site copy, to two deploys). Imports,
pre-restore and recovery-point snapshots are in no group: retention never prunes them.
Local retention (``services.snapshots.prune``) and off-site retention
(``offsite.retention``) both read this one table."""


LATEST_ORIGINS: tuple[SnapshotOrigin, ...] = (
    SnapshotOrigin.MANUAL,
    SnapshotOrigin.SCHEDULED,
    SnapshotOrigin.IMPORT,
    SnapshotOrigin.RECOVERY_POINT,
)
"""The origins the snapshot reference ``latest`` picks from (its newest ``ready`` one):
what a person or a schedule took or imported. Not ``pre-restore``: a restore leaves
one, so a second ``restore ... latest`` put back the data the first had just replaced
(newcomer pass). Not ``checkpoint``: with checkpoints on, every deploy takes one, so
``latest`` would move with each deploy, and a checkpoint goes back with its deploy's
code (``deployments rollback --data``). ``recovery-point`` is in: a person took it, in
the mode they chose. The CLI (``cli/refs.py``) and a drill without a snapshot
(``services.drills.latest_ready``, a drill schedule) read this one table."""


class CheckpointMode(StrEnum):
    """Whether each deploy of a workload first captures a checkpoint (SPEC section 10)."""

    NONE = "none"
    BEFORE_DEPLOY = "before-deploy"


class CaptureMode(StrEnum):
    """How a capture holds the workload still: stop (consistent), pause (crash-consistent)
    or none (live). An imported snapshot has no mode: its row says ``""``."""

    STOP = "stop"
    PAUSE = "pause"
    NONE = "none"


class RestoreStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class RestorePhase(StrEnum):
    """The steps of a restore, in order (``snapshots/restore/run.py``); ``done`` ends it."""

    QUEUED = "queued"
    VERIFY = "verify"
    EXTRACT = "extract"
    QUIESCE = "quiesce"
    SWAP = "swap"
    REDEPLOY = "redeploy"
    DONE = "done"


class SwapMethod(StrEnum):
    """How a restore swaps a volume: ``exchange`` (one ``RENAME_EXCHANGE``) or ``rename``
    (two renames). A restore's row says ``""`` until its pre-flight has chosen."""

    EXCHANGE = "exchange"
    RENAME = "rename"


class DeliveryOutcome(StrEnum):
    """What became of one call of a webhook."""

    QUEUED = "queued"
    FILTERED = "filtered"
    REFUSED = "refused"
    RATE_LIMITED = "rate_limited"
    DUPLICATE = "duplicate"


class DeliverySignature(StrEnum):
    """A webhook delivery's signature as its hook kind judged it."""

    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"
    UNSIGNED = "unsigned"
    """The trigger has no secret: nothing to check."""


class DrillStatus(StrEnum):
    """A restore drill (SPEC section 10): the sandbox ran the check, or could not."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class DrillPhase(StrEnum):
    """The steps of a drill, in order (``snapshots/drills/run.py``); ``done`` ends it."""

    QUEUED = "queued"
    EXTRACT = "extract"
    START = "start"
    CHECK = "check"
    CLEANUP = "cleanup"
    DONE = "done"


class DrillOrigin(StrEnum):
    """Who asked for a drill: a person (API, CLI) or a schedule's ``drill`` action."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
