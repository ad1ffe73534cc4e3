"""Serve the built web UI at ``/`` with a single-page-app fallback; never shadows the API.

The UI is static files from ``web/build`` (SvelteKit, adapter-static). Any GET that no API
route answered gets the file at that path, or ``index.html`` so the client-side router can
take it. Paths under ``/api/`` and ``/hooks/`` keep their JSON 404s, and no path may leave
the build directory.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response

from moorage.errors import error_body

_API_ROOTS = frozenset({"api", "hooks", "metrics"})
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Webhook URLs carry their token: never leak a page address to another site.
    "Referrer-Policy": "no-referrer",
}


def mount_ui(app: FastAPI, web_dir: Path) -> None:
    """Add the catch-all UI route; call after every API router is included."""
    root = web_dir.resolve()

    @app.get("/{path:path}", include_in_schema=False)
    def ui(path: str) -> Response:
        if path.split("/", 1)[0] in _API_ROOTS:
            return JSONResponse(error_body("not_found", "Not Found"), status_code=404)
        index = root / "index.html"
        if not index.is_file():
            return JSONResponse(
                error_body(
                    "ui_not_built",
                    f"The web UI is not built in {root}: run `make run`, or use the API at /api.",
                ),
                status_code=404,
            )
        if path and (target := _file_in(root, path)) is not None:
            immutable = "/_app/immutable/" in target.as_posix()
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(target, headers={**_HEADERS, "Cache-Control": cache})
        return FileResponse(index, headers={**_HEADERS, "Cache-Control": "no-cache"})


def _file_in(root: Path, path: str) -> Path | None:
    """The regular file at ``path`` below ``root``, or None: outside it, missing, or a
    name the file system refuses (a component over 255 bytes is ``ENAMETOOLONG``, which
    was a 500 and a traceback per request for anyone)."""
    try:
        target = (root / path).resolve()
        return target if target.is_relative_to(root) and target.is_file() else None
    except (OSError, ValueError):  # ValueError: a NUL byte (the URL check refuses it first)
        return None
