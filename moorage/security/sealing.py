"""Secrets at rest, sealed to the instance key (SPEC section 11: a storage target's
credentials are stored encrypted).

The instance key is an age X25519 identity in ``<data dir>/instance.key`` (mode 0600),
made on first use. ``seal`` encrypts a JSON object to it; ``unseal`` opens one. A
database copied without the key file (a stolen backup of ``moorage.db``, a dump)
shows no credential. The key file is part of what ``moorage backup create`` must
carry to restore an instance (with the targets' passphrases as the other way back).
No cryptography of our own: age through pyrage, as in ``storage.encryption``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519

from moorage.errors import ConfigError

KEY_FILE = "instance.key"
_lock = threading.Lock()


def _identity(data_dir: Path) -> x25519.Identity:
    path = data_dir / KEY_FILE
    with _lock:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            made = str(x25519.Identity.generate())
            scratch = path.with_name(f".{KEY_FILE}.{os.getpid()}")
            fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(made + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(scratch, path)  # fails if another process made one meanwhile
            except FileExistsError:
                pass
            finally:
                scratch.unlink()
        try:
            return x25519.Identity.from_str(path.read_text().strip())
        except (OSError, pyrage.IdentityError) as exc:
            raise ConfigError(
                f"cannot read the instance key {path}: {exc}; restore it from the "
                "instance backup (without it, stored credentials cannot be opened)"
            ) from exc


def seal(data_dir: Path, value: dict[str, Any]) -> str:
    """``value`` (JSON-able) encrypted to the instance key, as base64 text."""
    identity = _identity(data_dir)
    cipher = pyrage.encrypt(json.dumps(value).encode(), [identity.to_public()])
    return base64.b64encode(cipher).decode()


def unseal(data_dir: Path, sealed: str) -> dict[str, Any]:
    """What ``seal`` sealed. Raises ``ConfigError`` when the instance key is missing or
    is not the one it was sealed to."""
    try:
        plain = pyrage.decrypt(base64.b64decode(sealed), [_identity(data_dir)])
    except (pyrage.DecryptError, ValueError) as exc:
        raise ConfigError(
            f"a stored credential does not open with {data_dir / KEY_FILE}: the key file "
            "was replaced; restore the one this database was made with"
        ) from exc
    value: dict[str, Any] = json.loads(bytes(plain))
    return value
