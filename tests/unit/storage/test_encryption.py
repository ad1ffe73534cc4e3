"""Copies are sealed with age before they leave the host (``storage.encryption``).

What must hold: a round trip gives the same bytes at any size (empty, one chunk, many,
a chunk boundary); the ciphertext shows nothing of the plaintext; a wrong identity, a
flipped byte anywhere, a cut-off tail, a swapped chunk or an appended byte is refused
as ``copy_corrupt``; memory stays flat on a stream larger than any buffer; the
identity wrapped with a passphrase opens only with that passphrase.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
from collections.abc import Iterator

import pytest

from moorage.errors import InvalidInput, TargetError
from moorage.storage.encryption import (
    decrypt_stream,
    encrypt_stream,
    new_keypair,
    unwrap_identity,
    wrap_identity,
)

CHUNK = 64 * 1024  # age's STREAM chunk
KEYS = new_keypair()


def sealed(plain: bytes) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), out, KEYS.recipient)
    return out.getvalue()


def opened(cipher: bytes, identity: str = KEYS.identity) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(cipher), out, identity)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_a_round_trip_gives_the_same_bytes(size: int) -> None:
    plain = os.urandom(size)
    cipher = sealed(plain)
    assert opened(cipher) == plain
    assert cipher.startswith(b"age-encryption.org/v1\n")


def test_the_ciphertext_shows_nothing_of_the_plaintext() -> None:
    plain = b"postgres password=hunter2 " * 5000
    cipher = sealed(plain)
    assert b"hunter2" not in cipher
    assert sealed(plain) != cipher  # a fresh file key each time


def tampered() -> Iterator[tuple[str, bytes]]:
    cipher = sealed(os.urandom(3 * CHUNK + 100))
    header_end = cipher.index(b"\n---") + 1
    for name, at in (("header", 30), ("first chunk", header_end + 80), ("tail", -5)):
        flipped = bytearray(cipher)
        flipped[at] ^= 0x01
        yield f"flipped byte in {name}", bytes(flipped)
    yield "cut off tail", cipher[:-40]
    yield "cut at a chunk boundary", cipher[: len(cipher) - 100 - 16]
    yield "appended byte", cipher + b"\x00"
    yield "empty", b""
    yield "not age at all", b"PK\x03\x04" + os.urandom(500)


# Ids name the case only: the bytes are random, and parallel workers (pytest-xdist) must
# collect the same test ids.
@pytest.mark.parametrize(
    ("case", "cipher"), [pytest.param(case, cipher, id=case) for case, cipher in tampered()]
)
def test_any_change_on_the_target_is_refused(case: str, cipher: bytes) -> None:
    with pytest.raises(TargetError) as caught:
        opened(cipher)
    assert caught.value.code == "copy_corrupt", case


def test_another_targets_identity_does_not_open_it() -> None:
    with pytest.raises(TargetError) as caught:
        opened(sealed(b"data"), new_keypair().identity)
    assert caught.value.code == "copy_corrupt"


def test_a_malformed_recipient_or_identity_is_a_clear_input_error() -> None:
    with pytest.raises(InvalidInput):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), "age1notakey")
    with pytest.raises(InvalidInput):
        decrypt_stream(io.BytesIO(b"x"), io.BytesIO(), "AGE-SECRET-KEY-1NOPE")


def test_the_wrapped_identity_opens_with_its_passphrase_only() -> None:
    wrapped = wrap_identity(KEYS.identity, "correct horse battery staple")
    assert KEYS.identity.encode() not in wrapped
    assert unwrap_identity(wrapped, "correct horse battery staple") == KEYS.identity
    with pytest.raises(InvalidInput) as caught:
        unwrap_identity(wrapped, "correct horse battery stapler")
    assert caught.value.code == "wrong_passphrase"
    changed = bytearray(wrapped)
    changed[-3] ^= 1
    with pytest.raises(InvalidInput):
        unwrap_identity(bytes(changed), "correct horse battery staple")
    with pytest.raises(InvalidInput):
        wrap_identity(KEYS.identity, "")


class Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read (nothing held)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class Digest(io.RawIOBase):
    """A sink that keeps only the SHA-256 of what it was given."""

    def __init__(self) -> None:
        self.hash, self.size = hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        return len(data)


def test_memory_stays_flat_on_a_stream_larger_than_any_buffer(tmp_path: object) -> None:
    size = 256 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cipher_path = f"{tmp_path}/c.age"
    with open(cipher_path, "wb") as out:
        encrypt_stream(Zeros(size), out, KEYS.recipient)  # type: ignore[arg-type]
    sink = Digest()
    with open(cipher_path, "rb") as src:
        decrypt_stream(src, sink, KEYS.identity)  # type: ignore[arg-type]
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert sink.size == size
    assert sink.hash.hexdigest() == hashlib.sha256(bytes(size)).hexdigest()
    assert grown_mib < 64, f"peak RSS grew {grown_mib:.0f} MiB for a {size >> 20} MiB stream"
