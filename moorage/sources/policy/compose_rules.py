"""The rows about host files Compose itself reads while it resolves a file or starts it:
secrets and configs, ``env_file``, ``label_file``, ``extends.file``, ``include`` and
``credential_spec``. A path outside the workload's directory, or one only interpolation
would name, is the power. Pure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from moorage.sources.policy.model import (
    Find,
    Finding,
    Model,
    Scope,
    as_list,
    each_entry,
    each_service,
    host_path,
    inside,
    is_set,
)

REMOTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[^/@:]+@[^/:]+:)")  # a URL, or git@host:


def _outside(path: Any, scope: Scope) -> str | None:
    """Why a file path Compose reads is not the workload's own, or None when it is."""
    if not isinstance(path, str) or not path:
        return None
    if REMOTE.match(path) or path.endswith(".git"):
        return (
            f"{path!r} (remote: Compose v2 fetches it, running git or an HTTP client on the host)"
        )
    if "$" in path:
        return f"{path!r} (interpolated: only a literal path is checked before Compose reads it)"
    if not inside(host_path(path, scope), scope.directory):
        return repr(path)
    return None


def file_of(section: str) -> Find:
    """A top-level ``secrets`` or ``configs`` entry whose ``file`` Compose bind-mounts into
    the container: a host file outside the workload's directory, or that directory itself
    (``file: .`` mounted Moorage's own files, the env file's secret values among them,
    with no ``env.reveal`` audit row; attacker pass, helper 44)."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for name, item in each_entry(model.resolved, section):
            path = item.get("file")
            why = _outside(path, scope)
            if why is None and isinstance(path, str) and path:
                own = os.path.normpath(scope.directory)
                why = (
                    f"{path!r} (the workload's whole directory)"
                    if (host_path(path, scope) == own)
                    else None
                )
            if why is not None:
                yield f"{section}.{name}", f"reads the host file {why}"

    return find


def _paths(value: Any) -> Iterator[Any]:
    for entry in as_list(value):
        yield entry.get("path") if isinstance(entry, dict) else entry


def service_files(key: str) -> Find:
    """A service attribute naming files Compose reads into the container (``env_file``,
    ``label_file``). Compose merges them away (v1 drops the key), so the file as written
    is read too, where an interpolated path needs an admin."""

    def find(model: Model, scope: Scope) -> Iterator[Finding]:
        for doc in (model.written, model.resolved):
            for name, service in each_service(doc):
                for path in _paths(service.get(key)):
                    why = _outside(path, scope)
                    if why is not None:
                        yield name, f"{key} {why}"

    return find


def extends_files(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.written):
        extends = service.get("extends")
        if isinstance(extends, dict):
            why = _outside(extends.get("file"), scope)
            if why is not None:
                yield name, f"extends the file {why}"


def includes(model: Model, scope: Scope) -> Iterator[Finding]:
    for doc in (model.written, model.resolved):
        for entry in as_list(doc.get("include")):
            paths: list[Any] = []
            if isinstance(entry, dict):
                paths += as_list(entry.get("path"))
                paths += as_list(entry.get("env_file"))
                paths += as_list(entry.get("project_directory"))
            else:
                paths.append(entry)
            for path in paths:
                why = _outside(path, scope)
                if why is not None:
                    yield "include", f"includes {why}"


def credential_specs(model: Model, scope: Scope) -> Iterator[Finding]:
    for name, service in each_service(model.resolved):
        spec = service.get("credential_spec")
        if isinstance(spec, dict) and (is_set(spec.get("file")) or is_set(spec.get("registry"))):
            yield name, f"credential_spec {spec}"
