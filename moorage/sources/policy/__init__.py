"""What a workload may ask of Docker: one table of host powers, checked on the resolved model.

A *host power* is anything in a container's configuration that reaches past the
container into the host: a host path, a host namespace, a device, a capability, a
daemon-side plugin, an address other than ``MOORAGE_PUBLISH_ADDR``. An operator may
use Moorage volumes, ports on ``MOORAGE_PUBLISH_ADDR``, env, health checks, resource
limits and networks Moorage owns; everything in ``table.RULES`` needs an admin
(``services.powers`` enforces that, ``docs/CODEMAPS/policy.md`` explains each row).

The model is always the one Docker will run, in the vocabulary of the Compose
specification: for ``compose`` the output of ``config`` (``sources.compose.file``:
interpolation, ``extends`` and ``include`` resolved), plus the file as written for
the few attributes Compose resolves away (``env_file``, ``extends.file``,
``include``), which are judged first (``table.before_compose``: Compose must not read a
host file for an operator at all); for ``image`` the ``ContainerSpec`` Moorage builds,
written as one service (``image_service.service_of``). The table is closed: an attribute
no row has reviewed (``table.REVIEWED``) is itself a power (row ``unreviewed``), so a
Compose release that adds a way to reach the host needs an admin until someone reads it
and adds a row.

The modules: ``model`` (what is judged: ``Model``, ``Scope``, ``Rule``, and reading a
Compose model), ``rules`` (how each row finds its power in the services, volumes and
networks), ``compose_rules`` (the host files Compose itself reads), ``table`` (``RULES``,
``REVIEWED``, ``review``, ``before_compose``) and ``image_service`` (the image kind's
container as a Compose service).

Pure: no I/O, no engine, no Compose; the caller hands in the model and the scope.
"""
