"""Request and response bodies of the API, one module per resource; they make the OpenAPI
document the UI is built from. Import them from here: ``from moorage.api.schemas import X``.

    base.py       Body (every request), ErrorOut (every error answer), the text-rule markers
    output.py     ProgramText (a field that may hold program output), read_as
    users.py      sessions, users, API tokens
    projects.py   projects
    workloads.py  workloads, deployments, promote, reconcile, logs, env, chain, volumes
    snapshots.py  snapshots and restores
    drills.py     a snapshot restored elsewhere: clones and restore drills
    domains.py    a workload's domains and the proxy's state
    triggers.py   triggers, webhook deliveries, bindings
    storage.py    storage targets for off-site copies
    kinds.py      source and trigger kinds
    domains.py    a workload's domains and the proxy's state
    audit.py      the audit log
    liveness.py   liveness (GET /api/healthz)
"""

from moorage.api.schemas.audit import (
    AuditList,
    AuditOut,
)
from moorage.api.schemas.base import (
    MULTILINE_TEXT,
    OPAQUE_TEXT,
    Body,
    ErrorDetail,
    ErrorOut,
)
from moorage.api.schemas.domains import (
    DnsProviderIn,
    DnsProviderList,
    DnsProviderOut,
    DomainIn,
    DomainList,
    DomainOut,
    DomainStatus,
    ProxyOut,
)
from moorage.api.schemas.drills import (
    CloneIn,
    DrillCheckIn,
    DrillIn,
    DrillList,
    DrillOut,
    DrillStanding,
    DrillStandingList,
    RecoveryPointIn,
    RecoveryPointItem,
    RecoveryPointList,
    RecoveryPointOut,
    RecoveryPointRestore,
    RecoveryPointSkipped,
)
from moorage.api.schemas.kinds import (
    KindCapability,
    KindList,
    KindOut,
)
from moorage.api.schemas.liveness import (
    Health,
)
from moorage.api.schemas.projects import (
    ProjectIn,
    ProjectList,
    ProjectOut,
    ProjectPatch,
)
from moorage.api.schemas.snapshots import (
    CaptureIn,
    RestoreIn,
    RestoreList,
    RestoreOut,
    SnapshotList,
    SnapshotOut,
)
from moorage.api.schemas.triggers import (
    BindIn,
    DeliveryList,
    DeliveryOut,
    TriggerIn,
    TriggerList,
    TriggerOut,
    TriggerPatch,
)
from moorage.api.schemas.users import (
    LoginIn,
    SessionOut,
    TokenCreated,
    TokenIn,
    TokenList,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
    UserPatch,
)
from moorage.api.schemas.workloads import (
    ChainIn,
    ChainOut,
    DeploymentList,
    DeploymentOut,
    EnvValue,
    LastDeployment,
    LogsOut,
    PromoteIn,
    ReconcileOut,
    RevealedEnv,
    VolumeIn,
    VolumeList,
    VolumeOut,
    WorkloadIn,
    WorkloadList,
    WorkloadOut,
    WorkloadPatch,
)

__all__ = [
    "MULTILINE_TEXT",
    "OPAQUE_TEXT",
    "AuditList",
    "AuditOut",
    "BindIn",
    "Body",
    "CaptureIn",
    "ChainIn",
    "ChainOut",
    "CloneIn",
    "DeliveryList",
    "DeliveryOut",
    "DeploymentList",
    "DeploymentOut",
    "DnsProviderIn",
    "DnsProviderList",
    "DnsProviderOut",
    "DomainIn",
    "DomainList",
    "DomainOut",
    "DomainStatus",
    "DrillCheckIn",
    "DrillIn",
    "DrillList",
    "DrillOut",
    "DrillStanding",
    "DrillStandingList",
    "EnvValue",
    "ErrorDetail",
    "ErrorOut",
    "Health",
    "KindCapability",
    "KindList",
    "KindOut",
    "LastDeployment",
    "LoginIn",
    "LogsOut",
    "ProjectIn",
    "ProjectList",
    "ProjectOut",
    "ProjectPatch",
    "PromoteIn",
    "ProxyOut",
    "ReconcileOut",
    "RecoveryPointIn",
    "RecoveryPointItem",
    "RecoveryPointList",
    "RecoveryPointOut",
    "RecoveryPointRestore",
    "RecoveryPointSkipped",
    "RestoreIn",
    "RestoreList",
    "RestoreOut",
    "RevealedEnv",
    "SessionOut",
    "SnapshotList",
    "SnapshotOut",
    "TokenCreated",
    "TokenIn",
    "TokenList",
    "TokenOut",
    "TriggerIn",
    "TriggerList",
    "TriggerOut",
    "TriggerPatch",
    "UserIn",
    "UserList",
    "UserOut",
    "UserPatch",
    "VolumeIn",
    "VolumeList",
    "VolumeOut",
    "WorkloadIn",
    "WorkloadList",
    "WorkloadOut",
    "WorkloadPatch",
]
