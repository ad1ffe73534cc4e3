"""Password hashes (argon2id) and random bearer secrets (stored as SHA-256 only).

One argon2id hash takes 64 MiB and every core for a moment: at most ``HASH_SLOTS``
run at once in this process, whoever asks (login, a new user, the offline CLI), so
a flood of password checks cannot grow memory without bound.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from moorage.errors import Busy

_hasher = PasswordHasher()
HASH_MIB = _hasher.memory_cost // 1024
# A hash already runs `parallelism` lanes in threads: one slot per that many cores, at
# most two (128 MiB), at least one.
HASH_SLOTS = min(2, max(1, (os.cpu_count() or 1) // _hasher.parallelism))
HASH_WAIT_SECONDS = 10.0
_slots = threading.BoundedSemaphore(HASH_SLOTS)
_dummy_lock = threading.Lock()
_dummy: str | None = None

TOKEN_PREFIX = "mrg_"  # noqa: S105 (a prefix, not a secret)
MIN_PASSWORD_CHARS = 8


@contextmanager
def _hash_slot() -> Iterator[None]:
    if not _slots.acquire(timeout=HASH_WAIT_SECONDS):
        raise Busy("too many password checks at once; try again in a moment")
    try:
        yield
    finally:
        _slots.release()


def hash_password(password: str) -> str:
    with _hash_slot():
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    with _hash_slot():
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def dummy_hash() -> str:
    """A hash of a password nobody knows, made like a real one: checking an unknown
    user's password against it costs what checking a known user's does."""
    global _dummy
    with _dummy_lock:
        if _dummy is None:
            _dummy = hash_password(new_secret())
        return _dummy


def new_token() -> str:
    """A 256-bit API token, recognisable by its prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the store keeps of a high-entropy token: enough to look it up, not to use it."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def generate_password() -> str:
    return secrets.token_urlsafe(15)
