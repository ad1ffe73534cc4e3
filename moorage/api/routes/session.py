"""Web sessions for the UI: an HttpOnly SameSite=Strict cookie plus a CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from moorage.api.cache import SESSION_COOKIE
from moorage.api.deps import DbSession, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import LoginIn, SessionOut, UserOut
from moorage.errors import Busy
from moorage.services import users
from moorage.services.users import SESSION_LIFETIME

router = APIRouter(prefix="/api/session", tags=["session"])


@router.post("", status_code=201, responses=responses(401, 429, 503))
async def login(body: LoginIn, request: Request, response: Response, state: State) -> SessionOut:
    """Open a web session. Failed logins back off per account and per address (429
    ``login_backoff`` with Retry-After); a few password checks run at once, and a
    login that cannot get one within seconds is 503 ``busy``.

    The database session opens in the password check's worker thread, not as a
    dependency: that cost every attempt, even one answered 429 or 503, a worker thread
    of its own before the backoff and the gate saw it (attacker pass G)."""
    address = request.client.host if request.client else ""
    state.logins.admit(body.username, address)
    try:
        async with state.password_gate.slot(known=state.logins.known(address)):
            token, csrf, user = await run_in_threadpool(_login, state, body)
    except Busy:
        state.logins.withdrawn(body.username, address)
        raise
    state.logins.succeeded(body.username, address)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return SessionOut(user=user, csrf_token=csrf)


def _login(state: State, body: LoginIn) -> tuple[str, str, UserOut]:
    with state.db.session() as session:  # committed before the answer goes out
        token, csrf, user = users.login(session, body.username, body.password)
        return token, csrf, UserOut.model_validate(user)


@router.get("")
def whoami(request: Request, actor: Viewer, session: DbSession) -> SessionOut:
    user = users.get_by_name(session, actor.username)
    csrf = ""
    cookie = request.cookies.get(SESSION_COOKIE)
    if actor.via == "session" and cookie:
        _, csrf = users.session_for_cookie(session, cookie)
    return SessionOut(user=UserOut.model_validate(user), csrf_token=csrf)


@router.delete("", status_code=204)
def logout(request: Request, response: Response, actor: Viewer, session: DbSession) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        users.logout(session, actor, cookie)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
