"""``moorage projects``: list and create projects."""

from __future__ import annotations

from typing import Annotated

import typer

from moorage.cli.client import Client
from moorage.cli.output import emit_json, table

app = typer.Typer(help="Projects and their stages.")


@app.command("list")
def list_projects(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List projects."""
    items = Client().get("/api/projects")["items"]
    if as_json:
        emit_json(items)
        return
    rows = [{**p, "stages": ", ".join(p["stages"])} for p in items]
    table(
        rows,
        ["slug", "stages", "description"],
        empty="No projects yet: moorage projects create SLUG",
    )


@app.command("create")
def create_project(
    slug: str,
    stage: Annotated[
        list[str] | None, typer.Option("--stage", help="A stage, in order; repeat for more")
    ] = None,
    description: str = "",
) -> None:
    """Create a project (stages default to development, staging, production)."""
    body = {"slug": slug, "stages": stage or None, "description": description}
    project = Client().post("/api/projects", body)
    print(f"created project {project['slug']} ({', '.join(project['stages'])})")
