"""Fuzzing the untrusted reader: mutate a real archive, compressed or as raw tar.

Whatever the bytes, ``read_archive`` either succeeds or raises ``ArchiveInvalid``,
and nothing ever appears outside the staging directories.
"""

from __future__ import annotations

import io
import os
import random
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.errors import ArchiveInvalid
from moorage.snapshots import archive
from moorage.snapshots.archive import Limits, VolumeSource, write_archive
from moorage.snapshots.archive import read_archive as read

LIMITS = Limits(max_bytes=1 << 20, max_members=200)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Corpus:
    compressed: bytes
    tar: bytes
    headers: list[int]  # offsets of every header block in the raw tar


def _build() -> Corpus:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        one, two = base / "one", base / "two"
        (one / "dir" / "sub").mkdir(parents=True)
        (one / "dir" / "sub" / "f.txt").write_text("hello\n")
        (one / "empty").write_bytes(b"")
        (one / ("long-" + "n" * 120)).write_text("pax path")  # forces a pax header
        (one / "ünï").write_bytes(random.Random(3).randbytes(700))
        (two / "x").mkdir(parents=True)
        (two / "data").write_bytes(b"abc" * 400)
        # Every format-2 entry type, so mutations land in link and fifo headers too.
        os.symlink("../empty", one / "dir" / "link")
        os.link(one / "empty", one / "hard")
        os.mkfifo(one / "pipe")
        (one / os.fsdecode(b"bin-\xe9\\n")).write_bytes(b"raw name")
        for path in sorted(base.rglob("*"), reverse=True):  # children before parents
            stamp = 1_700_000_000_250_000_000
            os.utime(path, ns=(stamp, stamp), follow_symlinks=False)
        result = write_archive(
            base / "a.tar.zst",
            {"id": "w", "name": "n", "kind": "image"},
            [
                VolumeSource(index=0, name="one", scope="stage", source="one", path=one),
                VolumeSource(index=1, name="two", scope="stage", source="two", path=two),
            ],
        )
        compressed = result.path.read_bytes()
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(compressed)
    headers = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        for member in tf:
            headers.append(member.offset)
            if member.offset_data - member.offset > 512:  # a pax header precedes it
                headers.append(member.offset_data - 512)
    return Corpus(compressed, raw, headers)


CORPUS = _build()


@pytest.fixture(scope="module", autouse=True)
def _no_final_sync() -> Iterator[None]:
    """Durability has its own tests; here syncfs would only flush other processes' writes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(archive.durable, "make_durable", lambda roots: None)
        yield


HEADER_FIELDS = st.sampled_from(
    [0, 5, 10, 99, 100, 107, 124, 130, 135, 136, 148, 155, 156, 157, 257, 263, 345, 500, 511]
)


@st.composite
def mutated(draw: st.DrawFn, data: bytes, headers: list[int] | None = None) -> bytes:
    """Apply 1-4 edits: bit flips, byte overwrites, inserts, deletes, a truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        if headers and draw(st.booleans()):
            at = draw(st.sampled_from(headers)) + draw(HEADER_FIELDS)
        else:
            at = draw(st.integers(0, len(out) - 1))
        at = min(at, len(out) - 1)
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            value = draw(st.sampled_from([0x00, 0x2F, 0x2E, 0x5C, 0x32, 0x31, 0x35, 0x78, 0xFF]))
            out[at] = value
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=600))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 600))]
        else:
            del out[at:]
    return bytes(out)


def _read_in_sandbox(archive: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "parent"
        staging = {0: parent / "s0", 1: parent / "s1"}
        for path in staging.values():
            path.mkdir(parents=True)
        for mode in ("verify", "stage"):
            try:
                read(
                    io.BytesIO(archive),
                    limits=LIMITS,
                    staging=staging if mode == "stage" else None,
                )
            except ArchiveInvalid as exc:
                assert exc.code == "invalid_archive"
                assert str(exc)
            assert sorted(os.listdir(tmp)) == ["parent"]
            assert sorted(os.listdir(parent)) == ["s0", "s1"]
            if mode == "verify":
                assert not os.listdir(staging[0]) and not os.listdir(staging[1])


def test_the_unmutated_corpus_is_accepted() -> None:
    manifest = read(io.BytesIO(CORPUS.compressed), limits=LIMITS)
    assert [v["files"] for v in manifest["volumes"]] == [5, 1]
    counts = manifest["volumes"][0]
    assert (counts["symlinks"], counts["hardlinks"], counts["fifos"]) == (1, 1, 1)
    assert len(CORPUS.headers) > 8


@FUZZ
@given(mutated(CORPUS.compressed))
def test_mutated_compressed_stream(archive: bytes) -> None:
    _read_in_sandbox(archive)


@FUZZ
@given(mutated(CORPUS.tar, CORPUS.headers))
def test_mutated_raw_tar(tar: bytes) -> None:
    _read_in_sandbox(zstandard.ZstdCompressor(level=1).compress(tar))


def _fix_checksums(tar: bytearray, headers: list[int]) -> None:
    for offset in headers:
        block = tar[offset : offset + 512]
        if len(block) == 512 and any(block):
            block[148:156] = b" " * 8
            tar[offset + 148 : offset + 156] = b"%06o\0 " % sum(block)


@st.composite
def forged_headers(draw: st.DrawFn) -> bytes:
    """Header fields rewritten to hostile values, checksums repaired: past tarfile's first gate."""
    tar = bytearray(CORPUS.tar)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.sampled_from(CORPUS.headers))
        field = draw(
            st.sampled_from(
                [(0, 100), (124, 12), (156, 1), (157, 100), (257, 8), (345, 155), (100, 8)]
            )
        )
        start, width = at + field[0], field[1]
        value = draw(
            st.one_of(
                st.sampled_from(
                    [
                        b"../../escaped",
                        b"/abs",
                        b"volumes/0/../x",
                        b"volumes/9/x",
                        b"volumes/0/a\\b",
                        b"2",
                        b"1",
                        b"3",
                        b"6",
                        b"L",
                        b"S",
                        b"g",
                        b"x",
                        b"5",
                        b"77777777777",
                        b"\x80\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xf0",
                        b"ustar  \0",
                    ]
                ),
                st.binary(min_size=1, max_size=width),
            )
        )
        tar[start : start + width] = value[:width].ljust(width, b"\0")
    _fix_checksums(tar, CORPUS.headers)
    return bytes(tar)


@FUZZ
@given(forged_headers())
def test_forged_headers_with_valid_checksums(tar: bytes) -> None:
    _read_in_sandbox(zstandard.ZstdCompressor(level=1).compress(tar))


@pytest.mark.parametrize("cut", [1, 100, 511, 512, 1023, 1024, 1025, 4096])
def test_every_truncation_of_the_tar_is_refused(cut: int) -> None:
    # The writer ends with exactly the two zero blocks of the end marker, so any cut
    # breaks the marker or a member.
    assert CORPUS.tar.endswith(bytes(1024))
    archive = zstandard.ZstdCompressor(level=1).compress(CORPUS.tar[:-cut])
    with pytest.raises(ArchiveInvalid):
        read(io.BytesIO(archive), limits=LIMITS)
