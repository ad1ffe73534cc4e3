"""``/api/docs``: Swagger UI served from the files of the ``swagger-ui-bundle`` package,
and ``/api/openapi.json``, the document it shows.

The page and every script, stylesheet and icon it loads come from this server, so the
docs work offline and behind a firewall. Never point any of them at a CDN.
"""

from __future__ import annotations

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import Response

DOCS_PATH = "/api/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
DOCUMENT_PATH = "/api/openapi.json"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/api/docs``, its assets below ``/api/docs/assets``, and the
    OpenAPI document at ``/api/openapi.json``.

    The document (about 160 KB) is rendered to bytes on its first request and those bytes
    are served after: FastAPI keeps the schema but encodes it again for every request
    (about 10 ms of the event loop each, which anyone may ask for without logging in).
    The routes do not change while the server runs, so the bytes stay right."""
    rendered: list[bytes] = []

    async def document(_request: Request) -> Response:
        if not rendered:
            rendered.append(bytes(JSONResponse(app.openapi()).body))
        return Response(rendered[0], media_type="application/json")

    app.add_route(DOCUMENT_PATH, document, include_in_schema=False)
    app.mount(
        ASSETS_PATH,
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger-ui-assets",
    )

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=DOCUMENT_PATH,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            # The default validator badge calls an outside service.
            swagger_ui_parameters={"validatorUrl": None},
        )
