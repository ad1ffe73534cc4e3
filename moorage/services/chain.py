"""Chains: workloads deployed after this one succeeds. The chain graph stays acyclic."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.store.tables import ChainLink, Workload

MAX_NEXT = 64


def read(session: Session, workload_id: str) -> list[str]:
    get_workload(session, workload_id)
    rows = session.scalars(
        select(ChainLink.next_id)
        .where(ChainLink.workload_id == workload_id)
        .order_by(ChainLink.position)
    )
    return list(rows)


def _graph(session: Session) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for src, dst in session.execute(select(ChainLink.workload_id, ChainLink.next_id)):
        graph.setdefault(src, []).append(dst)
    return graph


def _path(graph: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """A path start -> ... -> goal, if one exists (iterative DFS)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        for nxt in graph.get(node, []):
            stack.append((nxt, [*path, nxt]))
    return None


def replace(session: Session, actor: Actor, workload_id: str, wanted: list[str]) -> list[str]:
    get_workload(session, workload_id)
    if len(wanted) > MAX_NEXT:
        raise InvalidInput(f"a chain has at most {MAX_NEXT} next workloads", code="invalid_chain")
    if len(set(wanted)) != len(wanted):
        raise InvalidInput("a workload is listed twice in next", code="invalid_chain")
    if workload_id in wanted:
        raise InvalidInput("a workload cannot chain to itself", code="chain_cycle")
    known = set(session.scalars(select(Workload.id).where(Workload.id.in_(wanted))))
    missing = [w for w in wanted if w not in known]
    if missing:
        raise InvalidInput(f"no workload {', '.join(missing)}", code="unknown_workload")
    graph = _graph(session)
    graph[workload_id] = list(wanted)
    for nxt in wanted:
        cycle = _path(graph, nxt, workload_id)
        if cycle is not None:
            raise InvalidInput(
                f"chain would loop: {' -> '.join([workload_id, *cycle])}",
                code="chain_cycle",
                details={"cycle": [workload_id, *cycle]},
            )
    for row in session.scalars(select(ChainLink).where(ChainLink.workload_id == workload_id)):
        session.delete(row)
    session.flush()
    for position, nxt in enumerate(wanted):
        session.add(ChainLink(workload_id=workload_id, next_id=nxt, position=position))
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_CHAIN_REPLACE,
        "workload",
        workload_id,
        {"next": wanted},
    )
    return list(wanted)
