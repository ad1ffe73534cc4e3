"""DNS providers (admin): ``GET /api/dns-providers``, ``PUT``/``DELETE
/api/dns-providers/{name}`` (SPEC section 12). Credentials go in and are never shown."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from moorage.api.deps import Admin, AppState, DbSession, State
from moorage.api.errors import responses
from moorage.api.schemas import DnsProviderIn, DnsProviderList, DnsProviderOut
from moorage.dns import load_kinds
from moorage.plugins.spec import DnsKind
from moorage.services import dns_providers

router = APIRouter(prefix="/api/dns-providers", tags=["dns"])


def _kinds(state: AppState) -> dict[str, DnsKind]:
    return state.proxy.dns.kinds if state.proxy is not None else load_kinds()


def _out(row: Any) -> DnsProviderOut:
    return DnsProviderOut(name=row.name, kind=row.kind, config=dict(row.config))


@router.get("")
def list_providers(actor: Admin, session: DbSession) -> DnsProviderList:
    return DnsProviderList(items=[_out(r) for r in dns_providers.listed(session)])


@router.put("/{name}")
def put_provider(
    name: str, body: DnsProviderIn, actor: Admin, session: DbSession, state: State
) -> DnsProviderOut:
    row = dns_providers.put(
        session, actor, state.settings, _kinds(state), name, body.kind, dict(body.config)
    )
    if state.proxy is not None:
        state.proxy.kick()
    return _out(row)


@router.delete("/{name}", status_code=204, responses=responses(409))
def delete_provider(name: str, actor: Admin, session: DbSession) -> Response:
    dns_providers.delete(session, actor, name)
    return Response(status_code=204)
