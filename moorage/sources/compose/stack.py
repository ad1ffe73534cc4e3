"""A Compose project as a stack of services: which services it runs, which volumes it
declares itself, and the binds of Moorage's own volumes (SPEC section 10).

Moorage volumes of a compose workload each name the service they bind into. They reach
Compose only through Moorage's override file, in the long syntax with ``type: bind``:
Docker then refuses a missing host path instead of creating an empty directory (the
restore protocol relies on that, SPEC section 6). Compose v2 also reads
``bind.create_host_path: false``, which says the same thing in the file; Compose v1
(1.29) refuses that key, and its long-syntax binds already fail on a missing path.

Named volumes the user's file declares stay Docker's: no snapshot covers them, and
``uncovered`` lists them so the API and the UI can say so. The user's own binds are
judged by ``sources.policy`` on the user's file alone; the override adds nothing but
Moorage's volumes, whose host paths Moorage derived and checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from moorage.errors import MoorageError
from moorage.plugins.spec import UncoveredVolume, VolumeMount
from moorage.sources.compose import file as compose_file


def model_of(text: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The file as Compose resolves it with ``env`` (``extends``, ``include``,
    interpolation: what will run); as written when Compose cannot resolve it now.
    Raises InvalidInput only for text that is not a YAML mapping."""
    try:
        return compose_file.RESOLVER.resolve(text, env).model
    except MoorageError:
        return compose_file.load_mapping(text)


def service_names(model: Mapping[str, Any]) -> list[str]:
    """The services of a Compose model, in the file's order."""
    services = model.get("services")
    return [str(name) for name in services] if isinstance(services, dict) else []


def published_ports(model: Mapping[str, Any]) -> dict[str, set[int] | None]:
    """Each service's published tcp container ports, what a domain can route to (the
    Compose spec's ``ports``: the long syntax's ``target``, or the short syntax
    ``[[IP:]HOST:]CONTAINER[/PROTOCOL]`` with CONTAINER a port or a range, which
    Compose 1.29 keeps for entries with an address). None for a service with an entry
    that reads as neither (not checked)."""
    services = model.get("services")
    out: dict[str, set[int] | None] = {}
    for name, service in services.items() if isinstance(services, dict) else []:
        entries = service.get("ports") if isinstance(service, dict) else None
        found: set[int] | None = set()
        for entry in entries if isinstance(entries, list) else []:
            ports = _container_ports(entry)
            if ports is None:
                found = None
                break
            if found is not None:
                found |= ports
        out[str(name)] = found
    return out


def _container_ports(entry: Any) -> set[int] | None:
    """The tcp container ports of one ``ports`` entry (empty: udp/sctp); None: unreadable."""
    if isinstance(entry, dict):
        target, protocol = entry.get("target"), str(entry.get("protocol") or "tcp")
        if not str(target).isdigit():
            return None
        return {int(str(target))} if protocol == "tcp" else set()
    if isinstance(entry, int) and not isinstance(entry, bool):
        return {entry}
    text, _, protocol = str(entry).strip().partition("/")
    container = text.rsplit(":", 1)[-1]
    first, _, last = container.partition("-")
    if not first.isdigit() or not (last or first).isdigit() or int(last or first) > 65535:
        return None
    return set(range(int(first), int(last or first) + 1)) if protocol in ("", "tcp") else set()


def uncovered(model: Mapping[str, Any]) -> list[UncoveredVolume]:
    """Named volumes of the model (top-level ``volumes:`` and the services' mounts of
    ``type: volume``, anonymous ones left out), each with the services that mount it,
    sorted by name. The engine keeps them; no snapshot holds them."""
    users: dict[str, set[str]] = {}
    declared = model.get("volumes")
    if isinstance(declared, dict):
        for name in declared:
            users.setdefault(str(name), set())
    services = model.get("services")
    if isinstance(services, dict):
        for service, spec in services.items():
            mounts = spec.get("volumes") if isinstance(spec, dict) else None
            for mount in mounts if isinstance(mounts, list) else []:
                name = _named_source(mount)
                if name is not None:
                    users.setdefault(name, set()).add(str(service))
    return [UncoveredVolume(name, tuple(sorted(users[name]))) for name in sorted(users)]


def _named_source(mount: Any) -> str | None:
    """The named volume a service mount uses, or None (a bind, tmpfs, anonymous volume)."""
    if isinstance(mount, dict):
        source = mount.get("source")
        if mount.get("type") == "volume" and isinstance(source, str) and source:
            return source
        return None
    if isinstance(mount, str):
        source = mount.split(":", 1)[0] if ":" in mount else ""
        if source and not source.startswith(("/", ".", "~", "$")):
            return source
    return None


def labelled_volumes(
    model: Mapping[str, Any], labels: Mapping[str, str], *, v2: bool
) -> dict[str, dict[str, Any]]:
    """The override's top-level ``volumes:``: ``labels`` (MOORAGE_CONTAINER_LABELS) on each
    named volume the project creates, so a cleanup by label finds them; never on an
    ``external`` one, which the project does not create. Empty without labels.

    Compose v2 merges an override's volume into the file's, so its entry is the labels
    alone; v1 (1.29) replaces the whole entry, so its entry is the file's own as resolved
    (driver, options, name) with the labels added to the file's. Either way the file's
    settings stay what ``sources.policy`` judged, and ``moorage.*`` keys are Moorage's to
    write there (the policy judges the user's file, never the override). Compose sets the
    labels when it creates a volume and never changes those of an existing one."""
    declared = model.get("volumes")
    if not labels or not isinstance(declared, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, spec in declared.items():
        own = spec if isinstance(spec, dict) else {}
        if own.get("external"):
            continue
        if v2:
            out[str(name)] = {"labels": dict(labels)}
            continue
        kept = own.get("labels")
        out[str(name)] = {
            **own,
            "labels": {**(kept if isinstance(kept, dict) else {}), **labels},
        }
    return out


def binds(volumes: Iterable[VolumeMount], *, v2: bool) -> dict[str, list[dict[str, Any]]]:
    """The override's ``volumes:`` entries per service for Moorage's volumes: long-syntax
    binds of the derived host path that fail when it is missing (see the module text)."""
    per_service: dict[str, list[dict[str, Any]]] = {}
    for v in volumes:
        if v.service is None:
            continue
        entry: dict[str, Any] = {
            "type": "bind",
            "source": str(v.host_path),
            "target": v.target,
            "read_only": v.read_only,
        }
        if v2:
            entry["bind"] = {"create_host_path": False}
        per_service.setdefault(v.service, []).append(entry)
    return per_service
