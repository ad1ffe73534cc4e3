"""Users (admin) and each user's own API tokens."""

from __future__ import annotations

from fastapi import APIRouter

from moorage.api.deps import Admin, DbSession, Viewer
from moorage.api.errors import responses
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

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/users")
def list_users(actor: Admin, session: DbSession) -> UserList:
    return UserList(items=[UserOut.model_validate(u) for u in users.list_all(session)])


@router.post("/users", status_code=201, responses=responses(409, 503))
def create_user(body: UserIn, actor: Admin, session: DbSession) -> UserOut:
    user = users.create(
        session, actor, username=body.username, role=body.role, password=body.password
    )
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", responses=responses(409, 503))
def update_user(user_id: str, body: UserPatch, actor: Admin, session: DbSession) -> UserOut:
    user = users.update(session, actor, user_id, role=body.role, password=body.password)
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=204, responses=responses(409))
def delete_user(user_id: str, actor: Admin, session: DbSession) -> None:
    users.delete(session, actor, user_id)


@router.get("/tokens")
def list_tokens(actor: Viewer, session: DbSession) -> TokenList:
    return TokenList(
        items=[TokenOut.model_validate(r) for r in users.tokens_of(session, actor.user_id)]
    )


@router.post("/tokens", status_code=201, responses=responses(409))
def create_token(body: TokenIn, actor: Viewer, session: DbSession) -> TokenCreated:
    """Create an API token, shown only in this answer. A user holds a bounded number of
    tokens; past it, 409 ``token_limit`` (``details.limit`` says how many): revoke one."""
    user = users.get_by_name(session, actor.username)
    token, row = users.create_token(session, actor, user, body.name)
    return TokenCreated(token=token, **TokenOut.model_validate(row).model_dump())


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, actor: Viewer, session: DbSession) -> None:
    users.revoke_token(session, actor, token_id)
