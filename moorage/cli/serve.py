"""``moorage serve``: build the server (``moorage/server.py``: migrate, first admin, every
part), then serve the API."""

from __future__ import annotations


def serve() -> None:
    """Serve Moorage on MOORAGE_BIND (default 127.0.0.1:8700)."""
    # Imported here so that HTTP commands of the CLI start fast.
    import faulthandler
    import logging
    import signal

    import uvicorn

    from moorage.api.app import create_app
    from moorage.api.connections import GuardedH11, raise_fd_limit
    from moorage.log_limits import bound_handlers
    from moorage.server import serve_parts
    from moorage.settings import Settings
    from moorage.text import escape_log_records

    # ``kill -USR1 <pid>`` writes every thread's stack to stderr (a stuck capture or deploy
    # says where it waits; the tests send it before giving up on a server).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = Settings.from_env()
    _check_free(settings.bind_host, settings.bind_port)
    server, first = serve_parts(settings)
    if first is not None and first.generated:
        print(
            f"Created admin user '{first.username}' with password {first.password} "
            "(generated, shown only now)",
            flush=True,
        )
    elif first is not None:  # the operator chose it: it stays out of the log
        print(f"Created admin user '{first.username}' with MOORAGE_ADMIN_PASSWORD", flush=True)
    log_format = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=log_format)
    escape_log_records()  # nothing a client sends can start a forged log line
    bound_handlers(log_format)  # nor repeat one, or a long traceback, without bound (uvicorn's too)
    app = create_app(server)
    host = f"[{settings.bind_host}]" if ":" in settings.bind_host else settings.bind_host
    print(f"Moorage serving on http://{host}:{settings.bind_port}", flush=True)
    GuardedH11.max_connections = raise_fd_limit()
    GuardedH11.buckets = app.state.buckets  # the same as ``pacing.Pace``'s (``create_app``)
    GuardedH11.vouchable = app.state.raw_vouching
    # uvloop (uvicorn's loop in C) instead of asyncio's Python loop: under 8 readers and a
    # 200-way fan-out every 2 s (``python -m bench list_under_load``) asyncio's own code
    # was a third of the loop thread's busy samples. The parser stays h11 (httptools has
    # no bound on a request's headers, and ``/hooks`` is open to anyone), in
    # ``GuardedH11``: deadlines on heads and bounds on connections (``api/connections``).
    uvicorn.run(
        app,
        host=settings.bind_host,
        port=settings.bind_port,
        log_level="warning",
        log_config=None,  # uvicorn's records go to the root handlers (escaped, throttled)
        server_header=False,
        loop="uvloop",
        http=GuardedH11,
        ws="none",
        # Whose X-Forwarded-For names the client (MOORAGE_TRUSTED_PROXIES): empty means
        # every client is the socket's peer.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
    )


def _check_free(host: str, port: int) -> None:
    """Refuse to start, before anything else, when MOORAGE_BIND cannot be listened on
    (uvicorn found out only after "serving on" was printed, and exited 3)."""
    import socket

    from moorage.cli.client import CliError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program "
                "holds it, or the address is not this host's; set MOORAGE_BIND to a free "
                "address (e.g. 127.0.0.1:8701)"
            ) from None
