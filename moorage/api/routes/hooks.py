"""``POST /hooks/{token}``: the public webhook endpoint. Its token is its credential."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from moorage.api.deps import State
from moorage.api.errors import responses
from moorage.plugins.spec import HookRequest
from moorage.services import hooks

router = APIRouter(prefix="/hooks", tags=["hooks"])


@router.post("/{token}", status_code=202, responses=responses(401, 413, 429))
async def receive_hook(
    token: str, request: Request, state: State, tasks: BackgroundTasks
) -> JSONResponse:
    """Fire a webhook trigger: 202 with the deployments it queued (none when filtered),
    200 for a replay (a delivery id, or a signed body, already received), 401 for a bad
    signature, 429 over the rate limit (which forged calls and replays never spend).

    Once its body is in (a slow sender holds nothing up), it runs as foreground work:
    the deploy workers and reconcile wait at their next statement outside a transaction
    until the answer is made (``store/priority.py``)."""
    body = await request.body()
    with state.db.priority.foreground():
        return await _answer(token, request, body, state, tasks)


async def _answer(
    token: str, request: Request, body: bytes, state: State, tasks: BackgroundTasks
) -> JSONResponse:
    hook = HookRequest(
        headers=dict(request.headers),
        body=body,
        source=request.client.host if request.client else "",
    )

    def receive() -> hooks.HookAnswer:
        # One worker thread for the whole delivery (a fan-out must answer fast under
        # load), committed before the answer goes out.
        with state.db.session() as session:
            return hooks.receive(session, state.registry, state.limiter, token, hook)

    answer = await run_in_threadpool(receive)
    if answer.queued:
        tasks.add_task(state.deployer.wake)  # after the commit, so the workers see the rows
    return JSONResponse(
        answer.body, status_code=answer.status, headers=answer.headers, background=tasks
    )
