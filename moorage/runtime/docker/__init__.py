"""The Docker engine through the Docker SDK for Python: the only package that imports
``docker`` (``tests/unit/test_layers.py`` checks it).

    engine.py    DockerEngine: the ``runtime.engine.Engine`` Protocol; containers and pins
    images.py    find by exact reference, pull, a registry's digest; logins per host
    networks.py  one network per name, removed only when unused; Compose volumes
    answers.py   SDK errors -> EngineError / EngineUnavailable; SDK answers -> Container
"""

from moorage.runtime.docker.engine import DEFAULT_SOCKET, LABEL_PIN, DockerEngine

__all__ = ["DEFAULT_SOCKET", "LABEL_PIN", "DockerEngine"]
