"""``POST /hooks/{token}``: the public webhook endpoint. Its token is its credential."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from moorage.api.cache import UNKNOWN_HOOK
from moorage.api.deps import State
from moorage.api.errors import responses
from moorage.api.urgency import is_urgent, served_first
from moorage.errors import NotFound, error_body
from moorage.plugins.spec import HookRequest
from moorage.services import hooks

router = APIRouter(prefix="/hooks", tags=["hooks"])


@router.get("/{token}", include_in_schema=False)
def hook_in_a_browser(token: str) -> JSONResponse:
    """A webhook URL opened in a browser: 405 that says what it takes (a newcomer read
    the 404 it answered as a wrong URL). Says nothing of whether the token exists."""
    return JSONResponse(
        error_body(
            "method_not_allowed",
            "a webhook URL takes POST requests from your Git host or registry, not GET; "
            "paste it into their webhook settings",
        ),
        status_code=405,
        headers={"Allow": "POST"},
    )


@router.post("/{token}", status_code=202, responses=responses(401, 413, 429))
async def receive_hook(
    token: str, request: Request, state: State, tasks: BackgroundTasks
) -> JSONResponse:
    """Fire a webhook trigger: 202 with a deployment per bound workload (none when
    filtered): ``queued`` counts them, ``joined`` those that were already queued (a firing
    joins a workload's queued deployment rather than queue another: ``services/firing``),
    200 for a replay (a delivery id, or a signed body, already received), 401 for a bad
    signature, 429 over the rate limit (which forged calls and replays never spend).

    A call ``HookFirst`` made urgent (at most 2 a second of all triggers) runs on a
    thread the event loop waits for (``urgency.served_first``). A delivery that passed
    its signature, replay and budget checks runs as foreground work until its answer is
    made: the deploy workers and reconcile wait at their next statement outside a
    transaction, and the event loop steps aside. The loop's waits in a row last at most
    0.1 s in all (``store/priority.py``).

    A token no trigger has is 404 from ``HookTokens`` on the event loop: a flood of
    made-up URLs held every worker thread with a read each (attacker pass G)."""
    if not await state.hook_tokens.known(token):
        raise NotFound(UNKNOWN_HOOK, code="unknown_hook")
    body = await request.body()
    hook = HookRequest(
        headers=_first_values(request.headers.raw),
        body=body,
        source=request.client.host if request.client else "",
    )

    def receive() -> hooks.HookAnswer:
        # One worker thread for the whole delivery (a fan-out must answer fast under
        # load), committed before the answer goes out.
        with state.db.session() as session:
            return hooks.receive(
                session,
                state.registry,
                state.limiter,
                token,
                hook,
                foreground=state.db.priority.foreground,
            )

    if is_urgent(request.scope):  # the loop waits for its thread (``api/urgency``)
        answer = await served_first(receive, state.db.priority, state.first_pool)
    else:
        answer = await run_in_threadpool(receive)
    if answer.queued:
        tasks.add_task(state.deployer.wake)  # after the commit, so the workers see the rows
    return JSONResponse(
        answer.body, status_code=answer.status, headers=answer.headers, background=tasks
    )


def _first_values(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header name (lower case) -> its first value, in one pass: ``dict(request.headers)``
    looks each name up again through the whole list (quadratic in the header count)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers
