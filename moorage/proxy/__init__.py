"""The reverse proxy in front of the workloads (SPEC section 12): Caddy, run and
supervised by the Moorage server (``caddy.py``), configured only through its admin API
on loopback with a config derived from the database (``caddy_config.py`` from the
routes ``router.py`` reads), and how a served certificate is read back (``certs.py``).
See docs/CODEMAPS/proxy.md.
"""
