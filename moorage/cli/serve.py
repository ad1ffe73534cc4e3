"""``moorage serve``: migrate, create the first admin, then serve the API."""

from __future__ import annotations


def serve() -> None:
    """Serve Moorage on MOORAGE_BIND (default 127.0.0.1:8700)."""
    # Imported here so that HTTP commands of the CLI start fast.
    import logging

    import uvicorn

    from moorage.api.app import create_app
    from moorage.bootstrap import ensure_first_admin, load_registry, open_store
    from moorage.deployer.service import Deployer
    from moorage.runtime.compose import ComposeRunner
    from moorage.runtime.docker import DockerEngine
    from moorage.runtime.pins import Pins
    from moorage.settings import Settings
    from moorage.text import escape_log_records

    settings = Settings.from_env()
    registry = load_registry()
    db = open_store(settings)
    first = ensure_first_admin(settings, db)
    if first is not None and first.generated:
        print(
            f"Created admin user '{first.username}' with password {first.password} "
            "(generated, shown only now)",
            flush=True,
        )
    elif first is not None:  # the operator chose it: it stays out of the log
        print(f"Created admin user '{first.username}' with MOORAGE_ADMIN_PASSWORD", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    escape_log_records()  # nothing a client sends can start a forged log line
    deployer = Deployer(
        settings,
        db,
        registry,
        DockerEngine(settings.docker_host, pins=Pins(settings.run_dir, str(settings.data_dir))),
        ComposeRunner(settings.docker_host),
    )
    app = create_app(settings, db, registry, deployer)
    host = f"[{settings.bind_host}]" if ":" in settings.bind_host else settings.bind_host
    print(f"Moorage serving on http://{host}:{settings.bind_port}", flush=True)
    uvicorn.run(
        app,
        host=settings.bind_host,
        port=settings.bind_port,
        log_level="warning",
        server_header=False,
    )
