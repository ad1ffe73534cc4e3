"""The ``moorage`` command's typer app: every group wired here (``cli/main`` runs it)."""

from __future__ import annotations

import typer

from moorage.cli import apps, dns, projects, recovery_points, snapshots, triggers
from moorage.cli.offline import admin_app, token_app
from moorage.cli.offsite import apps_offsite, backup_app, instance_app, snapshots_copy, targets_app
from moorage.cli.openapi import openapi
from moorage.cli.serve import serve

app = typer.Typer(
    help="Moorage: deploy and operate container workloads on a Docker host.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.command("openapi")(openapi)
app.add_typer(admin_app, name="admin")
app.add_typer(token_app, name="token")
app.add_typer(projects.app, name="projects")
app.add_typer(apps.app, name="apps")
app.add_typer(triggers.app, name="triggers")
app.add_typer(snapshots.app, name="snapshots")
app.add_typer(recovery_points.app, name="recovery-points")
app.add_typer(targets_app, name="targets")
app.add_typer(dns.app, name="dns")
app.add_typer(backup_app, name="backup")
app.add_typer(instance_app, name="instance")
snapshots.app.command("copy")(snapshots_copy)
apps.app.command("offsite")(apps_offsite)
