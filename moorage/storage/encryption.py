"""Client-side authenticated encryption of off-site copies, with age (``pyrage``).

Each storage target has its own age X25519 identity, made when the target is created.
Copies are encrypted to the identity's recipient (age's STREAM: 64 KiB chunks, each
sealed with ChaCha20-Poly1305, the last one marked), so a copy is streamed in and out
with flat memory, and any changed, reordered or missing chunk fails the decryption
(age specification, https://age-encryption.org/v1). The identity itself is kept
twice: in Moorage's database (sealed with the instance key, like other secrets), and on
the target wrapped with the target's passphrase (age's scrypt recipient), so a fresh
machine that knows only the passphrase can read the target back (SPEC section 11:
the passphrase is never sent to the target).

Nothing here is cryptography of our own: generation, wrapping and streaming are
pyrage's (the Rust ``age`` crate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import pyrage
from pyrage import passphrase as age_passphrase
from pyrage import x25519

from moorage.errors import InvalidInput, TargetError


@dataclass(frozen=True)
class Keypair:
    """An age identity (``AGE-SECRET-KEY-1...``, secret) and its recipient
    (``age1...``, public)."""

    identity: str
    recipient: str


def new_keypair() -> Keypair:
    """A fresh X25519 identity for one storage target."""
    identity = x25519.Identity.generate()
    return Keypair(str(identity), str(identity.to_public()))


def recipient_of(identity: str) -> str:
    """The recipient (public key) of an identity; ``InvalidInput`` when it is not one."""
    try:
        return str(x25519.Identity.from_str(identity).to_public())
    except pyrage.IdentityError as exc:
        raise InvalidInput(f"not an age identity: {exc}", code="invalid_input") from exc


def wrap_identity(identity: str, passphrase: str) -> bytes:
    """The identity encrypted with ``passphrase`` (age scrypt), to store on the target."""
    if not passphrase:
        raise InvalidInput("a storage target needs a passphrase", code="invalid_input")
    return bytes(age_passphrase.encrypt(identity.encode(), passphrase))


def unwrap_identity(wrapped: bytes, passphrase: str) -> str:
    """The identity ``wrap_identity`` sealed; ``InvalidInput`` (``wrong_passphrase``)
    for a wrong passphrase or a changed blob."""
    try:
        return bytes(age_passphrase.decrypt(wrapped, passphrase)).decode()
    except (pyrage.DecryptError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "the target's key does not open with this passphrase (a wrong passphrase, "
            "or the key file on the target was changed)",
            code="wrong_passphrase",
        ) from exc


def encrypt_stream(source: BinaryIO, sink: BinaryIO, recipient: str) -> None:
    """Read ``source`` to its end and write its age ciphertext for ``recipient`` to
    ``sink``, in chunks. Raises ``InvalidInput`` for a malformed recipient."""
    try:
        to = x25519.Recipient.from_str(recipient)
    except pyrage.RecipientError as exc:
        raise InvalidInput(f"not an age recipient: {exc}", code="invalid_input") from exc
    pyrage.encrypt_io(source, sink, [to])


def decrypt_stream(source: BinaryIO, sink: BinaryIO, identity: str) -> None:
    """Read age ciphertext from ``source`` and write the plaintext to ``sink``, in
    chunks. Raises ``TargetError`` (``copy_corrupt``) when it does not open with
    ``identity`` or any byte was changed, reordered or cut off. Plaintext of earlier
    chunks may already be in ``sink`` when that is found: callers decrypt into a
    scratch file and move it into place only after this returns (and the copy's
    SHA-256 matched)."""
    try:
        key = x25519.Identity.from_str(identity)
    except pyrage.IdentityError as exc:
        raise InvalidInput(f"not an age identity: {exc}", code="invalid_input") from exc
    try:
        pyrage.decrypt_io(source, sink, [key])
    except (pyrage.DecryptError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a real I/O error of the sink or the source, not the ciphertext
        raise TargetError(
            "the copy does not decrypt: it was made with another key, or bytes of it "
            "were changed or lost on the target",
            code="copy_corrupt",
        ) from exc
