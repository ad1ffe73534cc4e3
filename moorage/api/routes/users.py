"""Users (admin) and each user's own API tokens."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from moorage.api.deps import Admin, DbSession, Viewer
from moorage.api.routes.session import user_out
from moorage.api.schemas import (
    TokenCreated,
    TokenIn,
    TokenList,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
)
from moorage.errors import NotFound
from moorage.services import audit, users
from moorage.store.tables import ApiToken

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/users")
def list_users(actor: Admin, session: DbSession) -> UserList:
    return UserList(items=[user_out(u) for u in users.list_all(session)])


@router.post("/users", status_code=201)
def create_user(body: UserIn, actor: Admin, session: DbSession) -> UserOut:
    user = users.create(
        session, actor, username=body.username, role=body.role, password=body.password
    )
    return user_out(user)


def _token_out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


@router.get("/tokens")
def list_tokens(actor: Viewer, session: DbSession) -> TokenList:
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == actor.user_id).order_by(ApiToken.created_at)
    )
    return TokenList(items=[_token_out(r) for r in rows])


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, actor: Viewer, session: DbSession) -> TokenCreated:
    user = users.get_by_name(session, actor.username)
    token, row = users.create_token(session, actor, user, body.name)
    return TokenCreated(token=token, **_token_out(row).model_dump())


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, actor: Viewer, session: DbSession) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != actor.user_id:
        raise NotFound(f"you have no token {token_id!r}")
    session.delete(row)
    audit.record(session, actor, "token.revoke", "user", actor.username, {"token": token_id})
