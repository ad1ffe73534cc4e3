"""The Docker engine through the Docker SDK for Python: the only package that imports
``docker`` (``tests/unit/test_layers.py`` checks it).

    engine.py    DockerEngine: the ``runtime.engine.Engine`` Protocol; containers and pins
    images.py    find by exact reference, pull, a registry's digest; logins per host
    networks.py  one network per name, removed only when unused; Compose volumes
    answers.py   SDK errors -> EngineError / EngineUnavailable; SDK answers -> Container

Unless ``DOCKER_HOST`` is an ``ssh://`` URL, the SDK's SSH transport is kept from
loading: it imports paramiko and the ``cryptography`` package (about 30 MiB of a server
budgeted at 100 MiB idle, ``bench/api_list.py``) for an engine on a unix socket or TCP
that never needs them. Python's import system raises ``ImportError`` for a module whose
``sys.modules`` entry is ``None``, and the SDK's ``docker/transport/__init__.py`` skips
the transport on ``ImportError``.
"""

import os
import sys

if not os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
    sys.modules.setdefault("docker.transport.sshconn", None)  # type: ignore[arg-type]

from moorage.runtime.docker.engine import DEFAULT_SOCKET, LABEL_PIN, DockerEngine

__all__ = ["DEFAULT_SOCKET", "LABEL_PIN", "DockerEngine"]
