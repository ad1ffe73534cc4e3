"""A workload's domains (``PUT``/``GET /api/workloads/{id}/domains``) and the proxy's state
(``GET /api/proxy``), SPEC section 12. The proxy applies a change by itself (it derives
its config from the database); the route only asks it to look now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from moorage.api.deps import AppState, DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import DomainIn, DomainList, DomainOut, DomainStatus, ProxyOut
from moorage.services import domains, guard
from moorage.services.audit import AuditAction
from moorage.services.domains import DomainSpec

router = APIRouter(tags=["domains"])
PATH = "/api/workloads/{workload_id}/domains"


def _out(session: Session, state: AppState, rows: list[Any]) -> DomainList:
    names = domains.provider_names(session)
    proxy = state.proxy
    items = []
    for row in rows:
        cert = proxy.cert(row.host) if proxy is not None else None
        acme_error = proxy.acme_error(row.host) if proxy is not None else None
        items.append(
            DomainOut(
                host=row.host,
                port=row.port,
                service=row.service,
                tls=row.tls,
                redirect_http=row.redirect_http,
                dns_provider=names.get(row.dns_provider_id) if row.dns_provider_id else None,
                status=DomainStatus(
                    certificate_issuer=cert.issuer if cert else None,
                    certificate_expires_at=cert.not_after if cert else None,
                    acme_error=acme_error or row.acme_error,
                    dns_state=row.dns_state,
                    dns_error=row.dns_error,
                ),
            )
        )
    return DomainList(items=items, proxy="caddy" if proxy is not None else "none")


@router.get(PATH)
def read_domains(workload_id: str, actor: Viewer, session: DbSession, state: State) -> DomainList:
    return _out(session, state, domains.read(session, workload_id))


@router.put(PATH, responses=responses(409))
def replace_domains(
    workload_id: str, body: list[DomainIn], actor: Operator, session: DbSession, state: State
) -> DomainList:
    wanted = [DomainSpec(**d.model_dump(exclude={"status"})) for d in body]
    locks = state.deployer.locks
    with guard.change(
        session, locks, actor, AuditAction.WORKLOAD_DOMAINS_REPLACE, workload_id
    ) as change:
        domains.replace(session, actor, workload_id, wanted, state.registry)
        if state.proxy is not None:
            change.then(state.proxy.kick)
    return _out(session, state, domains.read(session, workload_id))


@router.get("/api/proxy", tags=["proxy"])
def proxy_status(actor: Viewer, state: State) -> ProxyOut:
    if state.proxy is None:
        return ProxyOut(
            mode="none",
            running=False,
            pid=None,
            starts=0,
            last_error=None,
            loaded_at=None,
            routes=0,
        )
    s = state.proxy.status
    return ProxyOut(
        mode=s.mode,
        running=s.running,
        pid=s.pid,
        starts=s.starts,
        last_error=s.last_error,
        loaded_at=s.loaded_at,
        routes=s.routes,
    )
