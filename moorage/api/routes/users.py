"""Users (admin) and each user's own API tokens."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import Admin, DbSession, Viewer
from moorage.api.errors import responses
from moorage.api.routes.session import user_out
from moorage.api.schemas import (
    TokenCreated,
    TokenIn,
    TokenList,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
    UserPatch,
)
from moorage.services import users
from moorage.store.tables import ApiToken

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/users")
def list_users(actor: Admin, session: DbSession) -> UserList:
    return UserList(items=[user_out(u) for u in users.list_all(session)])


@router.post("/users", status_code=201, responses=responses(409, 503))
def create_user(body: UserIn, actor: Admin, session: DbSession) -> UserOut:
    user = users.create(
        session, actor, username=body.username, role=body.role, password=body.password
    )
    return user_out(user)


@router.patch("/users/{user_id}", responses=responses(409, 503))
def update_user(user_id: str, body: UserPatch, actor: Admin, session: DbSession) -> UserOut:
    user = users.update(session, actor, user_id, role=body.role, password=body.password)
    return user_out(user)


@router.delete("/users/{user_id}", status_code=204, responses=responses(409))
def delete_user(user_id: str, actor: Admin, session: DbSession) -> None:
    users.delete(session, actor, user_id)


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
    return TokenList(items=[_token_out(r) for r in users.tokens_of(session, actor.user_id)])


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, actor: Viewer, session: DbSession) -> TokenCreated:
    user = users.get_by_name(session, actor.username)
    token, row = users.create_token(session, actor, user, body.name)
    return TokenCreated(token=token, **_token_out(row).model_dump())


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, actor: Viewer, session: DbSession) -> None:
    users.revoke_token(session, actor, token_id)
