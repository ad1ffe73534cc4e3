"""Every extension point of Moorage, in one file.

A source kind knows how to deploy one kind of workload; a trigger kind knows
one way of starting deploys; a storage kind knows one place to keep off-site
copies. Built-in kinds implement these Protocols and are registered through
the same entry points a third-party package would use:

    [project.entry-points."moorage.sources"]
    mykind = "mypackage.module:MySource"

A source kind's side effects go through ``DeployContext.engine`` and
``DeployContext.compose`` only; it never imports Docker itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from moorage.store.states import DeliverySignature, WorkloadStatus

if TYPE_CHECKING:
    from moorage.runtime.compose import ComposeRunner
    from moorage.runtime.engine import Engine
    from moorage.settings import Settings

SOURCE_GROUP = "moorage.sources"
TRIGGER_GROUP = "moorage.triggers"
STORAGE_GROUP = "moorage.storage"
DNS_GROUP = "moorage.dns"


@dataclass(frozen=True)
class VolumeMount:
    """A workload volume with its host path already derived and checked."""

    name: str
    scope: str
    host_path: Path
    target: str
    read_only: bool
    source: str = ""
    """As configured (relative to the scope's base, or absolute); for manifests."""
    base: Path | None = None
    """The directory ``host_path`` must stay below when it is mounted (pinned)."""
    service: str | None = None
    """The service of a stack kind (compose) the bind goes to; None for a one-container kind."""


@dataclass(frozen=True)
class WorkloadView:
    """Everything a source kind may know about a workload, read in one transaction."""

    id: str
    name: str
    kind: str
    project: str
    stage: str
    config: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    volumes: tuple[VolumeMount, ...] = ()
    artifact: dict[str, Any] | None = None
    """What the last successful deployment ran, or None if it never deployed."""
    domains: tuple[dict[str, Any], ...] = ()
    """Its domains (``services.inputs.DOMAIN_KEYS`` of each): what the proxy routes."""


@dataclass(frozen=True)
class HostPower:
    """One thing a workload asks of Docker that reaches the host: a row of the policy table
    (``sources/policy/``), where it is asked (a service, or ``volumes.<name>``...) and
    exactly what. Only an admin may grant one."""

    power: str
    where: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"power": self.power, "where": self.where, "detail": self.detail}

    def __str__(self) -> str:
        return f"{self.where}: {self.power} ({self.detail})"


@dataclass
class DeployContext:
    """The tools and facts a source kind gets for one deploy, teardown, reconcile or read."""

    engine: Engine
    compose: ComposeRunner
    settings: Settings
    workload: WorkloadView
    deployment_id: str = ""
    log: Callable[[str], None] = print
    """A line of the deployment's log, which viewers read: what a program printed goes in
    only through ``moorage.program_output.lines`` (and a ``DeployFailed`` message only
    through ``marked``)."""
    fault: Callable[[str], None] = lambda _name: None
    pull: bool = False
    """Pull the image even when a local copy exists (its tag moved in the registry)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels every container and network of this workload must carry."""
    switch: Callable[[str], None] = lambda _container_id: None
    """Send the workload's domains to this container (it passed its health check)
    before the previous one stops; returns once the proxy routes there (SPEC 12)."""
    hold_routes: Callable[[bool], None] = lambda _hold: None
    """``True``: keep the workload's domains on the upstream they have now, whatever
    starts meanwhile (a kind that replaces its containers in place: a candidate gets no
    request, the proxy holds them); ``False``: route to what runs now, at once."""


@runtime_checkable
class SourceKind(Protocol):
    """A plugin that deploys one kind of workload (``image``, ``compose``, ...)."""

    kind: ClassVar[str]
    """The kind's name as used in the API: lower-case slug, unique among sources."""

    config_model: ClassVar[type[BaseModel]]
    """Pydantic model of the workload config; its JSON schema drives API, UI and docs."""

    description: ClassVar[str]
    """One sentence shown next to the kind in the UI and in ``GET /api/kinds``."""

    supports_volumes: ClassVar[bool]
    """True when the kind mounts the workload's Moorage volumes (and so can snapshot them)."""

    def sample(self) -> dict[str, Any]:
        """Return a valid example config, shown in the UI form and the docs."""
        ...

    def validate(self, config: dict[str, Any]) -> BaseModel:
        """Check a config and return the parsed model; raise InvalidInput otherwise."""
        ...

    def host_powers(self, workload: WorkloadView, settings: Settings) -> list[HostPower]:
        """What the workload, run as it is now (config, env, volumes), asks of Docker that
        reaches the host, judged by ``sources.policy`` on the configuration Docker would
        run; empty when an operator may run it. Raise InvalidInput for a config that
        cannot be resolved. May run a tool (compose runs ``config``), never the engine."""
        ...

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Make the workload run its config; return the artifact that now runs.

        Raise DeployFailed (or EngineError) with a reason a person can act on, and
        leave what ran before still serving.
        """
        ...

    def teardown(self, ctx: DeployContext) -> None:
        """Remove everything the workload runs. Moorage volumes stay on disk; the Docker
        volumes ``data_volumes`` names go too (the caller asked for that)."""
        ...

    def data_volumes(self, ctx: DeployContext) -> list[str]:
        """The Docker volumes holding the workload's data that ``teardown`` removes with it
        (a Compose project's named volumes), by name; [] when it keeps none. Asked before
        a delete, which refuses to remove them unless told to (409 ``has_volumes``)."""
        ...

    def status(self, ctx: DeployContext) -> WorkloadStatus:
        """Observe the engine: ``running``, ``stopped`` or ``failed``."""
        ...

    def reconcile(self, ctx: DeployContext) -> bool:
        """Bring a workload that should run back up; return True when it changed anything."""
        ...

    def redeploy(self, ctx: DeployContext) -> dict[str, Any]:
        """Run ``ctx.workload.artifact`` again (after a restore), health-checked like a deploy.

        Return the artifact that now runs; raise DeployFailed (or EngineError) when it
        does not come up healthy. Restarting what is stopped is fine when it is exactly
        that artifact; never run anything but the artifact.
        """
        ...

    def logs(self, ctx: DeployContext, tail: int) -> str:
        """The last ``tail`` lines of the workload's container output."""
        ...

    def promoted(self, config: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
        """The config that runs ``artifact`` (from another workload) in place of ``config``."""
        ...


@runtime_checkable
class FixedPorts(Protocol):
    """A source kind whose config can publish fixed host ports: two workloads may not
    publish the same one (409 ``port_in_use`` when a config is saved)."""

    def host_ports(self, config: dict[str, Any]) -> list[tuple[int, str]]:
        """The ``(host port, protocol)`` pairs a saved ``config`` publishes on fixed ports."""
        ...

    def without_host_ports(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` publishing the same container ports on ports the engine picks (a
        clone of the workload must not take the source's fixed ports)."""
        ...


@runtime_checkable
class Stack(Protocol):
    """A source kind whose workload runs several services (``compose``): each Moorage
    volume names the service it binds into, and volumes the kind's own file declares
    (Compose named volumes) stay the engine's, outside snapshots (SPEC section 10)."""

    def service_names(self, config: dict[str, Any], env: dict[str, str]) -> list[str]:
        """The services ``config`` runs with ``env`` (as the tool resolves them, or as
        written when it cannot); raise InvalidInput for a config that does not parse."""
        ...

    def service_ports(
        self, config: dict[str, Any], env: dict[str, str]
    ) -> dict[str, set[int] | None]:
        """Each service's published tcp container ports, what a domain may route to
        (None: the config does not say in a form Moorage reads; not checked)."""
        ...

    def uncovered_volumes(
        self, config: dict[str, Any], env: dict[str, str]
    ) -> list[UncoveredVolume]:
        """The volumes ``config`` declares itself (not Moorage's): not in any snapshot."""
        ...


@dataclass(frozen=True)
class UncoveredVolume:
    """A volume a stack's own file declares (a Compose named volume): the engine keeps
    it, and snapshots do not cover it."""

    name: str
    services: tuple[str, ...]


@dataclass(frozen=True)
class Sandbox:
    """Where a restore drill runs a workload (SPEC section 10): objects of its own, apart
    from the live workload. Every container and network made for it carries ``labels``
    (so the drill removes them, even after a crash), joins only ``network`` and mounts
    ``volumes`` (the restored copies) in place of the workload's own."""

    id: str
    network: str
    labels: dict[str, str]
    volumes: tuple[VolumeMount, ...]

    def name(self, service: str = "") -> str:
        """A container name of the sandbox (per service of a stack)."""
        return drill_prefix(self.id) + (f"_{service}" if service else "")


def drill_prefix(drill_id: str) -> str:
    """The name of a drill's network and Compose project, and the start of its containers'
    names: ``moorage-drill-`` and the id, with hyphens for anything else. Every name
    Moorage makes for a workload starts ``moorage_`` (``sources/stage.py``,
    ``compose/deploy.project_name``), so no choice of project, stage and workload name
    gives a drill's: a compose workload named after a drill's id once ran Compose under
    the drill's project (``moorage_drill_dr_<hex>`` in project ``drill``, stage ``dr``)."""
    return "moorage-drill-" + re.sub(r"[^a-z0-9]", "-", drill_id.lower())


@runtime_checkable
class Sandboxed(Protocol):
    """A source kind that can run its deployed artifact in a drill's sandbox."""

    def start_sandbox(self, ctx: DeployContext, sandbox: Sandbox) -> dict[str, str]:
        """Run ``ctx.workload.artifact`` in ``sandbox``: its names, its network only, no
        published port, never restarted, ``sandbox.volumes`` mounted. Answer each
        service's container id (``""`` for a one-container kind). Raise DeployFailed
        or EngineError; the caller removes the sandbox whatever happens."""
        ...

    def sandbox_healthy(
        self, ctx: DeployContext, sandbox: Sandbox, containers: dict[str, str], timeout: float
    ) -> str:
        """Wait until the sandbox passes the workload's own health check, probing only
        through ``docker exec``; answer what the check said, or raise DeployFailed with it."""
        ...


@runtime_checkable
class TriggerKind(Protocol):
    """A plugin that starts deploys of its bound workloads (``webhook``, ``schedule``...)."""

    kind: ClassVar[str]
    """The kind's name as used in the API: lower-case slug, unique among triggers."""

    config_model: ClassVar[type[BaseModel]]
    """Pydantic model of the trigger config; its JSON schema drives API, UI and docs."""

    description: ClassVar[str]
    """One sentence shown next to the kind in the UI and in ``GET /api/kinds``."""

    uses_token: ClassVar[bool]
    """True when the trigger is reached through ``POST /hooks/{token}``."""

    def sample(self) -> dict[str, Any]:
        """Return a valid example config, shown in the UI form and the docs."""
        ...

    def validate(self, config: dict[str, Any]) -> BaseModel:
        """Check a config and return the parsed model; raise InvalidInput otherwise."""
        ...


# --- trigger capabilities -----------------------------------------------------
# A trigger kind implements TriggerKind plus any of these; the core dispatches on
# which ones it implements (isinstance), never on the kind's name.


@dataclass(frozen=True)
class HookRequest:
    """An HTTP call of ``POST /hooks/{token}``: lower-cased headers, the raw body."""

    headers: Mapping[str, str]
    body: bytes
    source: str


@dataclass(frozen=True)
class HookVerdict:
    """What a hook kind makes of a request; the core queues deploys only when ``accepted``."""

    provider: str
    event: str
    delivery_id: str | None
    signature: DeliverySignature
    """``valid``, ``invalid``, ``missing`` or ``unsigned`` (no secret configured)."""
    matched: bool
    reason: str
    commit: str | None = None
    """The pushed commit's object name (hex), when the payload names one."""
    commit_title: str | None = None
    """The first line of its message (escaped, at most 200 characters)."""
    signed_sha256: str | None = None
    """With a valid signature: the SHA-256 (hex) of exactly the bytes it covers (a form's
    ``payload`` field for Gitea, the body for the others). The replay guard's key: the
    same signed bytes in another wrapping (a form, extra fields) are the same delivery."""

    @property
    def authentic(self) -> bool:
        return self.signature in (DeliverySignature.VALID, DeliverySignature.UNSIGNED)


@runtime_checkable
class HookTrigger(Protocol):
    """A trigger fired by ``POST /hooks/{token}``."""

    def receive(self, config: dict[str, Any], request: HookRequest) -> HookVerdict:
        """Check the signature (in constant time) and the filters; never raise on bad input."""
        ...


@runtime_checkable
class TimedTrigger(Protocol):
    """A trigger that fires at computed times."""

    def next_run(self, config: dict[str, Any], after: datetime) -> datetime:
        """The first firing time strictly after ``after`` (timezone-aware, UTC)."""
        ...

    def action(self, config: dict[str, Any]) -> tuple[str, str]:
        """What a firing does: ``("deploy", "")``, ``("snapshot", <capture mode>)``,
        ``("drill", "")`` (a restore drill of the latest ready snapshot) or
        ``("backup", "")`` (the instance backs itself up to the config's ``target_id``)."""
        ...


@runtime_checkable
class PolledTrigger(Protocol):
    """A trigger that asks something outside on an interval whether to deploy."""

    def interval(self, config: dict[str, Any]) -> float:
        """Seconds between two polls."""
        ...

    def poll(self, engine: Engine, config: dict[str, Any], workload: WorkloadView) -> str | None:
        """A reason to deploy ``workload`` now (say, a new digest), or None."""
        ...


# --- storage targets (SPEC section 11) ------------------------------------------
# Where off-site copies go. A storage kind opens a connection to one target from its
# config; the core encrypts before ``put`` and decrypts after ``get`` (the target only
# ever holds ciphertext), so a kind moves bytes and nothing else.


@dataclass(frozen=True)
class StoredObject:
    """One object on a target: its key (``/``-separated, relative to the target's
    path or prefix), size in bytes and last-modified instant (UTC)."""

    key: str
    size: int
    modified: datetime


@runtime_checkable
class TargetStore(Protocol):
    """An open connection to one storage target. Keys are checked by the core
    (``storage.keys.check_key``) before they reach a kind."""

    def put(self, key: str, source: BinaryIO) -> int:
        """Write ``source`` (read to its end, in chunks) as ``key``; return the bytes
        written. The object appears whole or not at all: a failure or a crash part-way
        leaves any earlier object of that key as it was, and no partial one under it.
        Raises ``TargetError``."""
        ...

    def get(self, key: str, sink: BinaryIO) -> int:
        """Write the object ``key`` into ``sink`` in chunks; return the bytes written.
        Raises ``TargetError`` (code ``target_object_missing`` when there is none)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a key that is not there is not an error."""
        ...

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        ...

    def close(self) -> None:
        """Release the connection; calling it twice is harmless."""
        ...


@runtime_checkable
class StorageKind(Protocol):
    """A plugin that stores off-site copies (``sftp``, ``s3``, ``local``), registered
    under the ``moorage.storage`` entry point group."""

    kind: ClassVar[str]
    """The kind's name as used in the API: lower-case slug, unique among storage kinds."""

    config_model: ClassVar[type[BaseModel]]
    """Pydantic model of the target config; its JSON schema drives API, UI and docs.
    Credentials are ``SecretStr`` fields: masked on read (``kind_config.public_config``)."""

    description: ClassVar[str]

    place_fields: ClassVar[frozenset[str]]
    """Config keys that say where the copies are (a host, a bucket, a path): they never
    change on a target, since its key and its copies live there (a new place is a new
    target)."""

    def validate(self, config: dict[str, Any]) -> BaseModel:
        """Check a config and return the parsed model; raise InvalidInput otherwise."""
        ...

    def open(self, config: dict[str, Any]) -> TargetStore:
        """Connect to the target a validated config names. Raises ``TargetError``
        (``target_unreachable``, ``target_auth_failed``, ``target_error``)."""
        ...


class DnsError(Exception):
    """A DNS provider refused or could not be reached; the message says which and why."""


@runtime_checkable
class DnsZone(Protocol):
    """One provider's zone, opened from a validated config (``DnsKind.open``). Names are
    absolute without the trailing dot (``app.example.com``, ``*.example.com``,
    ``_acme-challenge.example.com``). Raises ``DnsError``."""

    def add(self, name: str, rtype: str, value: str, ttl: int) -> None:
        """Add one ``rtype`` record (A, AAAA or TXT) of ``value`` at ``name``; already
        there is fine. Other records of the name stay untouched: a zone holds records
        Moorage did not make, and it never replaces or deletes those."""
        ...

    def remove(self, name: str, rtype: str, value: str) -> None:
        """Remove the one ``rtype`` record of ``value`` at ``name`` (one Moorage added);
        none there is not an error; other values of the name stay."""
        ...

    def lookup(self, name: str, rtype: str) -> list[str]:
        """The values the provider holds for ``name``/``rtype`` (empty: none)."""
        ...


@runtime_checkable
class DnsKind(Protocol):
    """A plugin that keeps DNS records at one kind of provider (``rfc2136``,
    ``cloudflare``), registered under the ``moorage.dns`` entry point group (SPEC
    section 12): the A/AAAA record of a domain that names a provider, and the TXT
    records of DNS-01 challenges for wildcard certificates."""

    kind: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    """Pydantic model of the provider config; credentials are ``SecretStr`` fields."""
    description: ClassVar[str]

    def open(self, config: dict[str, Any]) -> DnsZone:
        """The zone a validated config (secrets in clear) names."""
        ...
