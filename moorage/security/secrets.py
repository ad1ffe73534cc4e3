"""Password hashes (argon2id) and random bearer secrets (stored as SHA-256 only)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

TOKEN_PREFIX = "mrg_"  # noqa: S105 (a prefix, not a secret)
MIN_PASSWORD_CHARS = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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
