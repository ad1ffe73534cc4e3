"""The untrusted reader against a corpus of hostile and broken archives built here, byte by byte.

Each case must be refused with ``ArchiveInvalid`` for its own reason (the message is
matched, so a case cannot pass by tripping over some other rule), in verify-only
mode and when staging, without anything appearing outside the staging directories
and with bounded memory.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import stat
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from moorage.errors import ArchiveInvalid
from moorage.snapshots.archive import Limits, read_archive

MiB = 1 << 20
LIMITS = Limits(max_bytes=256 * MiB, max_members=1000)
MEMORY_CAP = 64 * MiB
NOISE = random.Random(5).randbytes(4096)  # incompressible, yet the same every run

# --- tar building blocks: raw bytes, so nothing stops us writing what tarfile would not


def _octal(value: int, width: int) -> bytes:
    if 0 <= value < 8 ** (width - 1):
        return f"{value:0{width - 1}o}".encode() + b"\0"
    return b"\x80" + value.to_bytes(width - 1, "big", signed=True)  # base-256


def _text(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def header(
    name: str | bytes,
    *,
    kind: bytes = b"0",
    size: int = 0,
    mode: int = 0o644,
    mtime: int = 1_700_000_000,
    linkname: str | bytes = b"",
    prefix: str | bytes = b"",
    magic: bytes = b"ustar\x0000",
    devmajor: int = 0,
) -> bytes:
    h = bytearray(512)

    def put(offset: int, width: int, value: bytes) -> None:
        assert len(value) <= width, value
        h[offset : offset + len(value)] = value

    put(0, 100, _text(name))
    put(100, 8, _octal(mode, 8))
    put(108, 8, _octal(0, 8))
    put(116, 8, _octal(0, 8))
    put(124, 12, _octal(size, 12))
    put(136, 12, _octal(mtime, 12))
    put(148, 8, b" " * 8)
    put(156, 1, kind)
    put(157, 100, _text(linkname))
    put(257, 8, magic)
    put(329, 8, _octal(devmajor, 8))
    put(337, 8, _octal(0, 8))
    put(345, 155, _text(prefix))
    put(148, 8, f"{sum(h):06o}".encode() + b"\0 ")
    return bytes(h)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def pax_payload(records: list[tuple[str | bytes, str | bytes]]) -> bytes:
    out = b""
    for key, value in records:
        body = b" " + _text(key) + b"=" + _text(value) + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        out += str(length).encode() + body
    return out


def pax(records: list[tuple[str | bytes, str | bytes]], *, kind: bytes = b"x") -> bytes:
    payload = pax_payload(records)
    return header("PaxHeader/x", kind=kind, size=len(payload)) + pad(payload)


def file(name: str | bytes, data: bytes = b"", **kw: Any) -> bytes:
    return header(name, size=len(data), **kw) + pad(data)


def directory(name: str | bytes, **kw: Any) -> bytes:
    return header(name, kind=b"5", mode=0o755, **kw)


END = bytes(1024)


def manifest_obj(*volumes: tuple[int, int]) -> dict[str, Any]:
    return {
        "format": 1,
        "workload": {"id": "w1", "name": "web", "kind": "image"},
        "created_at": "2024-01-01T00:00:00Z",
        "volumes": [
            {
                "index": i,
                "name": f"v{i}",
                "scope": "stage",
                "source": f"v{i}",
                "files": files,
                "bytes": size,
            }
            for i, (files, size) in enumerate(volumes or ((0, 0),))
        ],
    }


def manifest2_obj(*volumes: dict[str, int]) -> dict[str, Any]:
    """A format-2 manifest; each volume's counters default to 0."""
    keys = ("files", "dirs", "symlinks", "hardlinks", "fifos", "bytes", "allocated_bytes")
    obj = manifest_obj(*[(0, 0)] * max(1, len(volumes)))
    obj["format"] = 2
    for entry, counts in zip(obj["volumes"], volumes or ({},), strict=True):
        entry.update({key: counts.get(key, 0) for key in keys})
    return obj


def tar2(*members: bytes, volumes: tuple[dict[str, int], ...] = ({},), end: bool = True) -> bytes:
    """A format-2 tar stream: manifest first, then the members, then the end marker."""
    head = file("manifest.json", json.dumps(manifest2_obj(*volumes)).encode())
    return head + b"".join(members) + (END if end else b"")


def symlink(name: str | bytes, target: str | bytes, **kw: Any) -> bytes:
    return header(name, kind=b"2", linkname=target, mode=0o777, **kw)


def hardlink(name: str | bytes, target: str | bytes, **kw: Any) -> bytes:
    return header(name, kind=b"1", linkname=target, **kw)


def fifo(name: str | bytes) -> bytes:
    return header(name, kind=b"6")


def manifest(*volumes: tuple[int, int], raw: bytes | None = None) -> bytes:
    data = raw if raw is not None else json.dumps(manifest_obj(*volumes)).encode()
    return file("manifest.json", data)


def tar(
    *members: bytes, volumes: tuple[tuple[int, int], ...] = ((0, 0),), end: bool = True
) -> bytes:
    """A tar stream: manifest first, then the members, then the end marker."""
    return manifest(*volumes) + b"".join(members) + (END if end else b"")


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)


def raw_frame(blocks: list[bytes], *, window_descriptor: int = 0x38, descriptor: int = 0) -> bytes:
    """A hand-made zstd frame (no content size, no checksum) from pre-built blocks."""
    return b"\x28\xb5\x2f\xfd" + bytes([descriptor, window_descriptor]) + b"".join(blocks)


def raw_block(data: bytes, *, last: bool = False) -> bytes:
    head = (len(data) << 3) | (0 << 1) | int(last)
    return head.to_bytes(3, "little") + data


def rle_block(byte: int, size: int, *, last: bool = False) -> bytes:
    head = (size << 3) | (1 << 1) | int(last)
    return head.to_bytes(3, "little") + bytes([byte])


V0 = "volumes/0/"
# A minimal access ACL: owner rwx, group r-x, other r-x (tag, perm, id; version 2).
ACL_BLOB = (2).to_bytes(4, "little") + b"".join(
    tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + (0xFFFFFFFF).to_bytes(4, "little")
    for tag, perm in ((0x01, 7), (0x04, 5), (0x20, 5))
)


@dataclass
class Case:
    id: str
    build: Callable[[Path], bytes]  # gets the test's root directory, answers the archive
    reason: str  # a regex the refusal's message must match
    volumes: int = 1
    limits: Limits = LIMITS


def plain(
    id: str, reason: str, *members: bytes, volumes: tuple[tuple[int, int], ...] = ((0, 0),)
) -> Case:
    """A format-1 case: the rules every archive keeps, on the oldest format."""
    data = zst(tar(*members, volumes=volumes))
    return Case(id, lambda _root: data, reason, volumes=len(volumes))


def v2(id: str, reason: str, *members: bytes, volumes: tuple[dict[str, int], ...] = ({},)) -> Case:
    """A format-2 case: links, fifos, raw names, extended attributes."""
    data = zst(tar2(*members, volumes=volumes))
    return Case(id, lambda _root: data, reason, volumes=len(volumes))


# --- the corpus ------------------------------------------------------------


def _window_28(_root: Path) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=28)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(
        out, closefd=False
    ) as writer:
        writer.write(tar(directory(V0)))
    data = out.getvalue()
    assert zstandard.get_frame_parameters(data).window_size == 1 << 28
    return data


def _rle_bomb(_root: Path) -> bytes:
    """96 MiB of file data from a few KiB of input: tiny feeds, huge output, then a count lie."""
    size = 96 * MiB
    head = manifest((1, size + 1)) + directory(V0) + header(V0 + "zeros", size=size)
    blocks = [raw_block(head)]
    blocks += [rle_block(0, 128 * 1024) for _ in range(size // (128 * 1024))]
    blocks.append(rle_block(0, len(END), last=True))
    return raw_frame(blocks)


def _zero_bomb(_root: Path) -> bytes:
    """A real stream of 64 MiB of zeros, all legal, read to the end; then trailing bytes."""
    size = 64 * MiB
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False) as writer:
        writer.write(manifest((1, size)) + directory(V0) + header(V0 + "zeros", size=size))
        chunk = bytes(MiB)
        for _ in range(size // MiB):
            writer.write(chunk)
        writer.write(END)
    return out.getvalue() + b"\0"


def _count_bomb(_root: Path) -> bytes:
    dirs = [directory(V0)] + [directory(f"{V0}d{i}") for i in range(1500)]
    return zst(tar(*dirs))


def _absolute_into_root(root: Path) -> bytes:
    return zst(tar(directory(V0), pax([("path", f"{root}/escaped")]) + file("x", b"pwn")))


def _hidden_after_end(_root: Path) -> bytes:
    body = tar(directory(V0), volumes=((1, 3),))
    return zst(body + file(V0 + "hidden", b"pwn") + END)


def _corrupt_middle(_root: Path) -> bytes:
    body = bytearray(
        tar(directory(V0), file(V0 + "a", b"abc"), file(V0 + "b", b"def"), volumes=((2, 6),))
    )
    second = body.index(b"volumes/0/b")
    body[second + 3] ^= 0x20  # header checksum no longer matches
    return zst(bytes(body))


def _truncated_zstd(_root: Path) -> bytes:
    data = zst(tar(directory(V0), file(V0 + "a", NOISE), volumes=((1, 4096),)))
    return data[: len(data) // 2]


def _truncated_tar(_root: Path) -> bytes:
    body = tar(directory(V0), file(V0 + "a", NOISE), volumes=((1, 4096),))
    return zst(body[: len(body) - 3000])


def _trailing_garbage(_root: Path) -> bytes:
    return zst(tar(directory(V0))) + b"garbage"


def _two_frames(_root: Path) -> bytes:
    return zst(tar(directory(V0))) + zst(b"\0" * 1024)


def _skippable_after(_root: Path) -> bytes:
    return zst(tar(directory(V0))) + b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"abcd"


def _corrupt_block(_root: Path) -> bytes:
    data = bytearray(zst(tar(directory(V0), file(V0 + "a", NOISE[:2000]), volumes=((1, 2000),))))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def _window_25(_root: Path) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=25)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(
        out, closefd=False
    ) as writer:
        writer.write(tar(directory(V0)))
    return out.getvalue()


def _window_crafted(_root: Path) -> bytes:
    # Window_Descriptor exponent 21: a 2 GiB window, far over the 128 MiB cap.
    return raw_frame([raw_block(tar(directory(V0)), last=True)], window_descriptor=21 << 3)


def _dictionary_frame(_root: Path) -> bytes:
    return b"\x28\xb5\x2f\xfd" + bytes([0x01, 0x38, 0x07]) + raw_block(b"x", last=True)


def _short_stream(_root: Path) -> bytes:
    body = (
        manifest((1, 10 * MiB)) + directory(V0) + header(V0 + "liar", size=10 * MiB) + b"x" * 1024
    )
    return zst(body)


def _manifest_nested(_root: Path) -> bytes:
    return zst(manifest(raw=b"[" * 200_000 + b"]" * 200_000) + END)


def _manifest_huge(_root: Path) -> bytes:
    raw = json.dumps(manifest_obj()).encode()[:-1] + b"," + b" " * (2 * MiB) + b'"x": 1}'
    return zst(manifest(raw=raw) + END)


def _manifest_raw(raw: bytes) -> Callable[[Path], bytes]:
    data = zst(manifest(raw=raw) + END)
    return lambda _root: data


def _manifest_with(**changes: Any) -> Callable[[Path], bytes]:
    obj = manifest_obj()
    for key, value in changes.items():
        if key.startswith("v0_"):
            obj["volumes"][0][key[3:]] = value
        else:
            obj[key] = value
    return _manifest_raw(json.dumps(obj).encode())


def _manifest_index_gap(_root: Path) -> bytes:
    obj = manifest_obj((0, 0), (0, 0))
    obj["volumes"][1]["index"] = 2
    return zst(manifest(raw=json.dumps(obj).encode()) + END)


def _negative_size(_root: Path) -> bytes:
    """A base-256 size field of -4096: a reader that trusts it reads backwards or forever."""
    block = bytearray(header(V0 + "neg", size=0))
    block[124:136] = b"\xff" + (-4096 % 256**11).to_bytes(11, "big")
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}".encode() + b"\0 "
    return zst(tar(directory(V0), bytes(block) + bytes(8192), volumes=((1, 0),)))


def _deep(_root: Path) -> bytes:
    return zst(tar(directory(V0), pax([("path", V0 + "d/" * 65 + "f")]) + file("x")))


CASES = [
    # path traversal, in its spellings
    plain("dotdot", r"'\.\.' component", directory(V0), file(V0 + "../../escaped", b"pwn")),
    plain("dotdot-deep", r"'\.\.' component", directory(V0), file(V0 + "a/../../../../escaped")),
    plain("dotdot-leading", r"'\.\.' component", file("../escaped", b"pwn")),
    plain("absolute", "absolute", file("/volumes/0/escaped", b"pwn")),
    Case("absolute-into-root", _absolute_into_root, "absolute"),
    plain("backslash-leading", "outside volumes", file("\\..\\escaped", b"pwn")),
    plain(
        "pax-path-dotdot",
        r"'\.\.' component",
        directory(V0),
        pax([("path", V0 + "../../escaped")]) + file(V0 + "innocent", b"pwn"),
    ),
    plain(
        "gnu-longname-dotdot",
        "GNU long-name header",
        directory(V0),
        header("././@LongLink", kind=b"L", size=40)
        + pad(b"volumes/0/../../../../escaped\0")
        + file(V0 + "innocent", b"pwn"),
    ),
    plain(
        "overlong-utf8-dots", "not in the archive yet", file(b"volumes/0/\xc0\xae\xc0\xae/escaped")
    ),
    plain("pax-path-not-utf8", "not UTF-8", pax([("path", b"volumes/0/\xff\xfe")]) + file("x")),
    v2(
        "pax-binary-dotdot",
        r"'\.\.' component",
        directory(V0),
        pax([("hdrcharset", "BINARY"), ("path", b"volumes/0/\xff/../../escaped")]) + file("x"),
    ),
    v2("pax-charset-unknown", "unknown charset", pax([("hdrcharset", "KOI8-R")]) + file("x")),
    plain("unicode-digit-index", "not a volume index", file("volumes/\u0660/x")),
    plain("index-leading-zero", "not a volume index", file("volumes/00/x")),
    plain("index-not-in-manifest", "volume 1 is not in the manifest", file("volumes/1/x")),
    plain("outside-volumes", "outside volumes", file("etc/passwd", b"pwn")),
    plain("volumes-as-file", "outside volumes", file("volumes", b"")),
    plain(
        "volumes-dir-twice",
        "'volumes/' appears twice",
        directory("volumes/"),
        directory("volumes/"),
    ),
    plain("volume-root-file", "volume root must be a directory", file("volumes/0", b"")),
    # links, devices and other types; format 1 holds files and directories only
    plain("v1-symlink", "format 1 archives hold", directory(V0), symlink(V0 + "l", "/etc")),
    plain("v1-hardlink", "format 1 archives hold", directory(V0), hardlink(V0 + "l", V0 + "x")),
    plain("v1-fifo", "format 1 archives hold", directory(V0), fifo(V0 + "p")),
    plain(
        "char-device", "character device", directory(V0), header(V0 + "c", kind=b"3", devmajor=1)
    ),
    plain("block-device", "block device", directory(V0), header(V0 + "b", kind=b"4", devmajor=8)),
    v2("v2-char-device", "character device", directory(V0), header(V0 + "c", kind=b"3")),
    # nothing is ever written through a link
    v2(
        "file-under-symlink",
        "'l' is a symlink, not a directory",
        directory(V0),
        symlink(V0 + "l", "/tmp"),
        file(V0 + "l/escaped", b"pwn"),
        volumes=({"symlinks": 1, "files": 1, "bytes": 3},),
    ),
    v2(
        "dir-under-symlink",
        "'l' is a symlink, not a directory",
        directory(V0),
        symlink(V0 + "l", "../../.."),
        directory(V0 + "l/escaped"),
        volumes=({"symlinks": 1, "dirs": 1},),
    ),
    v2(
        "symlink-over-dir",
        "already in the archive",
        directory(V0),
        directory(V0 + "d"),
        symlink(V0 + "d", "/etc"),
        volumes=({"symlinks": 1, "dirs": 1},),
    ),
    v2(
        "file-over-symlink",
        "already in the archive",
        directory(V0),
        symlink(V0 + "l", "/etc/passwd"),
        file(V0 + "l", b"pwn"),
        volumes=({"symlinks": 1, "files": 1, "bytes": 3},),
    ),
    v2(
        "hardlink-over-symlink",
        "already in the archive",
        directory(V0),
        file(V0 + "f", b"x"),
        symlink(V0 + "l", "/etc/passwd"),
        hardlink(V0 + "l", V0 + "f"),
        volumes=({"symlinks": 1, "files": 1, "hardlinks": 1, "bytes": 1},),
    ),
    v2(
        "symlink-empty",
        "empty target",
        directory(V0),
        symlink(V0 + "l", ""),
        volumes=({"symlinks": 1},),
    ),
    v2(
        "symlink-nul",
        "NUL byte",
        directory(V0),
        pax([("linkpath", b"/etc\0/passwd")]) + symlink(V0 + "l", "x"),
        volumes=({"symlinks": 1},),
    ),
    v2(
        "symlink-target-over-cap",
        "target over 4095 bytes",
        directory(V0),
        pax([("linkpath", "a/" * 2100)]) + symlink(V0 + "l", "x"),
        volumes=({"symlinks": 1},),
    ),
    v2(
        "symlink-with-data",
        "not a file but claims 3 bytes",
        directory(V0),
        header(V0 + "l", kind=b"2", linkname="x", size=3) + pad(b"pwn"),
        volumes=({"symlinks": 1},),
    ),
    # hard links: only to an earlier regular file of the same volume
    *(
        v2(
            f"hardlink-{what}",
            "not an earlier regular file of the same volume",
            directory(V0),
            directory(V0 + "d"),
            file(V0 + "f", b"x"),
            symlink(V0 + "s", "f"),
            hardlink(V0 + "h", target),
            file(V0 + "later", b"y"),
            directory("volumes/1/"),
            file("volumes/1/other", b"z"),
            volumes=(
                {"dirs": 1, "files": 2, "symlinks": 1, "hardlinks": 1, "bytes": 2},
                {"files": 1, "bytes": 1},
            ),
        )
        for what, target in (
            ("etc-passwd", "/etc/passwd"),
            ("dotdot", V0 + "../x"),
            ("dotdot-out", "../../../etc/passwd"),
            ("later-member", V0 + "later"),
            ("symlink", V0 + "s"),
            ("directory", V0 + "d"),
            ("other-volume", "volumes/1/other"),
            ("itself", V0 + "h"),
            ("volume-root", V0),
            ("missing", V0 + "nothing"),
        )
    ),
    v2(
        "hardlink-with-data",
        "not a file but claims 3 bytes",
        directory(V0),
        file(V0 + "f", b"x"),
        header(V0 + "h", kind=b"1", linkname=V0 + "f", size=3) + pad(b"pwn"),
        volumes=({"files": 1, "hardlinks": 1, "bytes": 1},),
    ),
    # extended attributes: user data and ACLs only, on files and directories only
    v2(
        "xattr-capability",
        "security.capability",
        directory(V0),
        pax([("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02")]) + file(V0 + "f"),
        volumes=({"files": 1},),
    ),
    v2(
        "xattr-trusted",
        "trusted.x",
        directory(V0),
        pax([("SCHILY.xattr.trusted.x", "1")]) + file(V0 + "f"),
        volumes=({"files": 1},),
    ),
    v2(
        "xattr-on-symlink",
        "extended attributes on a link",
        directory(V0),
        pax([("SCHILY.xattr.user.x", "1")]) + symlink(V0 + "l", "x"),
        volumes=({"symlinks": 1},),
    ),
    v2(
        "xattr-user-on-fifo",
        "user attributes on something that is not a file or directory",
        directory(V0),
        pax([("SCHILY.xattr.user.x", "1")]) + fifo(V0 + "p"),
        volumes=({"fifos": 1},),
    ),
    v2(
        "xattr-empty-user-name",
        "is not user data",
        directory(V0),
        pax([("SCHILY.xattr.user.", "1")]) + file(V0 + "f"),
        volumes=({"files": 1},),
    ),
    v2(
        "acl-malformed",
        "not a well-formed POSIX ACL",
        directory(V0),
        pax([("SCHILY.xattr.system.posix_acl_access", b"\x02\0\0\0garbage")]) + file(V0 + "f"),
        volumes=({"files": 1},),
    ),
    v2(
        "acl-default-on-file",
        "default ACL on something that is not a directory",
        directory(V0),
        pax([("SCHILY.xattr.system.posix_acl_default", ACL_BLOB)]) + file(V0 + "f"),
        volumes=({"files": 1},),
    ),
    *(
        v2(
            f"owner-{what}",
            "an owner no file can have",
            directory(V0),
            pax([(key, value)]) + file(V0 + "f"),
            volumes=({"files": 1},),
        )
        for what, key, value in (
            ("uid-minus-one", "uid", "4294967295"),
            ("gid-huge", "gid", "99999999999"),
        )
    ),
    v2(
        "xattr-over-cap",
        "over the cap",
        directory(V0),
        pax([(f"SCHILY.xattr.user.{i}", "v" * 8000) for i in range(10)]) + file(V0 + "f"),
        volumes=({"files": 1},),
    ),
    # every type is counted against the manifest, both ways
    *(
        v2(f"more-{kind}-than-declared", f"more {kind} than its manifest", directory(V0), *members)
        for kind, members in (
            ("dirs", [directory(V0 + "d")]),
            ("symlinks", [symlink(V0 + "l", "x")]),
            ("fifos", [fifo(V0 + "p")]),
            ("files", [file(V0 + "f")]),
            ("hardlinks", [file(V0 + "f"), hardlink(V0 + "h", V0 + "f")]),
        )
        if kind != "hardlinks"
    ),
    v2(
        "more-hardlinks-than-declared",
        "more hardlinks than its manifest",
        directory(V0),
        file(V0 + "f"),
        hardlink(V0 + "h", V0 + "f"),
        volumes=({"files": 1},),
    ),
    *(
        v2(
            f"fewer-{kind}-than-declared",
            f"declares .*1 {kind}",
            directory(V0),
            volumes=({kind: 1},),
        )
        for kind in ("dirs", "symlinks", "hardlinks", "fifos", "files")
    ),
    v2("pax-sparse-v2", "sparse", directory(V0), pax([("GNU.sparse.size", "9")]) + file(V0 + "s")),
    plain("contiguous", "contiguous file", directory(V0), file(V0 + "c", b"abc", kind=b"7")),
    plain("gnu-sparse", "GNU sparse", directory(V0), file(V0 + "s", b"abc", kind=b"S")),
    plain(
        "pax-sparse-map",
        "sparse",
        directory(V0),
        pax([("GNU.sparse.map", "0,3"), ("GNU.sparse.realsize", "3")]) + file(V0 + "s", b"abc"),
    ),
    plain(
        "pax-sparse-1.0",
        "sparse",
        directory(V0),
        pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0")]) + file(V0 + "s", b"1\n0\n3\n"),
    ),
    plain("unknown-type", "unsupported type", directory(V0), file(V0 + "z", b"abc", kind=b"Z")),
    plain("global-pax", "global pax header", pax([("path", "../escaped")], kind=b"g")),
    v2(
        "pax-linkpath",
        "not an earlier regular file",
        directory(V0),
        pax([("linkpath", "/etc/passwd")]) + hardlink(V0 + "h", V0 + "x"),
        volumes=({"hardlinks": 1},),
    ),
    # duplicates and conflicts
    plain(
        "duplicate-file",
        "a file of that name is already in the archive",
        directory(V0),
        file(V0 + "f", b"a"),
        file(V0 + "f", b"b"),
        volumes=((2, 2),),
    ),
    plain(
        "duplicate-dir",
        "a directory of that name is already",
        directory(V0),
        directory(V0 + "d"),
        directory(V0 + "d"),
    ),
    plain(
        "file-then-dir",
        "a file of that name is already",
        directory(V0),
        file(V0 + "x", b"a"),
        directory(V0 + "x"),
        volumes=((1, 1),),
    ),
    plain(
        "dir-then-file",
        "a directory of that name is already",
        directory(V0),
        directory(V0 + "x"),
        file(V0 + "x", b"a"),
        volumes=((1, 1),),
    ),
    plain(
        "file-as-parent",
        "is a file, not a directory",
        directory(V0),
        file(V0 + "x", b"a"),
        file(V0 + "x/y", b"b"),
        volumes=((2, 2),),
    ),
    plain("parent-missing", "not in the archive yet", directory(V0), file(V0 + "nodir/x")),
    plain(
        "directory-revisited",
        "already finished",
        directory(V0),
        directory(V0 + "a"),
        directory(V0 + "b"),
        file(V0 + "a/late", b"x"),
        volumes=((1, 1),),
    ),
    plain(
        "volume-revisited",
        "not contiguous",
        directory(V0),
        directory("volumes/1/"),
        file(V0 + "late", b"x"),
        volumes=((1, 1), (0, 0)),
    ),
    plain("volume-root-twice", "appears twice", directory(V0), directory(V0)),
    # pax tricks
    plain(
        "pax-size-conflict",
        "conflicts",
        directory(V0),
        pax([("size", "20")]) + file(V0 + "f", b"0123456789"),
        volumes=((1, 20),),
    ),
    plain(
        "pax-size-not-decimal",
        "not a decimal",
        directory(V0),
        pax([("size", "1_0")]) + file(V0 + "f"),
    ),
    plain(
        "pax-path-twice",
        "sets 'path' twice",
        directory(V0),
        pax([("path", V0 + "a"), ("path", "../../escaped")]) + file(V0 + "f"),
    ),
    plain(
        "pax-chained",
        "two pax headers in a row",
        directory(V0),
        pax([("path", V0 + "a")]) + pax([("path", "../escaped")]) + file(V0 + "f"),
    ),
    plain(
        "pax-huge", "over the cap", directory(V0), header("PaxHeader/x", kind=b"x", size=1 << 30)
    ),
    plain("pax-dangling", "not followed by a member", directory(V0), pax([("path", V0 + "a")])),
    plain(
        "pax-malformed",
        "malformed",
        directory(V0),
        header("PaxHeader/x", kind=b"x", size=12) + pad(b"99 path=abc\n") + file(V0 + "f"),
    ),
    plain(
        "pax-unknown-keyword",
        "unsupported keyword",
        directory(V0),
        pax([("MOORAGE.x", "1")]) + file(V0 + "f"),
    ),
    plain("pax-mtime-nan", "not a number", directory(V0), pax([("mtime", "nan")]) + file(V0 + "f")),
    plain(
        "pax-mtime-implausible",
        "implausible mtime",
        directory(V0),
        pax([("mtime", "999999999999999")]) + file(V0 + "f"),
    ),
    plain(
        "not-posix-ustar",
        "not a POSIX ustar header",
        directory(V0),
        file(V0 + "f", magic=b"ustar  \0"),
    ),
    plain(
        "dir-with-data",
        "not a file but claims 100 bytes",
        directory(V0),
        header(V0 + "d/", kind=b"5", size=100),
    ),
    # names that need normalising
    plain(
        "nul-in-pax-path", "NUL byte", directory(V0), pax([("path", V0 + "a\0../../x")]) + file("y")
    ),
    plain("trailing-slash-file", "trailing slash on a file", directory(V0), file(V0 + "f/")),
    plain(
        "trailing-slash-file-pax",
        "trailing slash on a file",
        directory(V0),
        pax([("path", V0 + "f/")]) + file("x"),
    ),
    plain(
        "double-slash-dir", "trailing slash on a directory", directory(V0), directory(V0 + "d//")
    ),
    plain("dot-component", r"'\.' component", directory(V0), file(V0 + "./x")),
    plain(
        "empty-component",
        "empty path component",
        directory(V0),
        directory(V0 + "a/"),
        file(V0 + "a//b"),
    ),
    plain(
        "ustar-prefix-dotdot", r"'\.\.' component", directory(V0), file("x", prefix="volumes/0/..")
    ),
    plain(
        "name-over-cap",
        "over 4096 bytes",
        directory(V0),
        pax([("path", V0 + "a/" * 2100 + "f")]) + file("x"),
    ),
    plain(
        "component-over-cap",
        "longer than 255 bytes",
        directory(V0),
        pax([("path", V0 + "a" * 300)]) + file("x"),
    ),
    Case("depth-over-cap", _deep, "deeper than 64 levels"),
    # the manifest
    Case(
        "manifest-missing",
        lambda _r: zst(directory(V0) + file(V0 + "x", b"1") + END),
        "first member must be manifest.json",
    ),
    Case("manifest-absent", lambda _r: zst(END), "no manifest.json"),
    Case(
        "manifest-not-first",
        lambda _r: zst(directory(V0) + manifest() + END),
        "first member must be manifest.json",
    ),
    Case("manifest-not-json", _manifest_raw(b"{not json"), "not valid JSON"),
    Case("manifest-not-utf8", _manifest_raw(b'{"format": "\xff"}'), "not valid JSON"),
    Case(
        "manifest-duplicate-keys",
        _manifest_raw(b'{"format": 1, "format": 1}'),
        "repeats the key 'format'",
    ),
    Case("manifest-nan", _manifest_raw(b'{"format": NaN}'), "NaN"),
    Case("manifest-array", _manifest_raw(b"[]"), "not a JSON object"),
    Case("manifest-nested", _manifest_nested, "nested too deeply|not valid JSON"),
    Case("manifest-huge", _manifest_huge, "over the cap"),
    Case("manifest-format-3", _manifest_with(format=3), "format 3"),
    Case(
        "manifest-v2-missing-counter",
        lambda _r: zst(
            file(
                "manifest.json",
                json.dumps({**manifest_obj(), "format": 2}).encode(),
            )
            + END
        ),
        "dirs must be a non-negative integer",
    ),
    Case("manifest-format-float", _manifest_with(format=1.0), "format 1.0"),
    Case("manifest-index-1", _manifest_with(v0_index=1), "indexes must be exactly 0..n-1"),
    Case("manifest-index-string", _manifest_with(v0_index="0"), "indexes must be exactly 0..n-1"),
    Case("manifest-index-gap", _manifest_index_gap, "position 1 has index 2"),
    Case("manifest-negative-files", _manifest_with(v0_files=-1), "non-negative integer"),
    Case("manifest-bool-bytes", _manifest_with(v0_bytes=True), "non-negative integer"),
    Case("manifest-name-not-string", _manifest_with(v0_name=7), "name must be a string"),
    Case("manifest-no-workload", _manifest_with(workload=None), "workload"),
    Case("manifest-declares-over-cap", _manifest_with(v0_bytes=1 << 50), "over the cap"),
    Case(
        "manifest-is-directory",
        lambda _r: zst(directory("manifest.json") + END),
        "must be a regular file",
    ),
    # the manifest's counts lie, both ways
    plain(
        "files-more-than-declared",
        "more files than its manifest",
        directory(V0),
        file(V0 + "a", b"1"),
        file(V0 + "b", b"2"),
        volumes=((1, 2),),
    ),
    plain(
        "files-fewer-than-declared",
        "declares 3 files",
        directory(V0),
        file(V0 + "a", b"1"),
        volumes=((3, 1),),
    ),
    plain(
        "bytes-more-than-declared",
        "more bytes than its manifest",
        directory(V0),
        file(V0 + "a", b"12345"),
        volumes=((1, 2),),
    ),
    plain(
        "bytes-fewer-than-declared",
        "declares 1 files, 9 bytes",
        directory(V0),
        file(V0 + "a", b"1"),
        volumes=((1, 9),),
    ),
    # bombs
    plain(
        "size-bomb-header",
        "over the cap",
        directory(V0),
        pax([("size", str(1 << 40))]) + header(V0 + "bomb"),
        volumes=((1, 1),),
    ),
    plain(
        "size-bomb-base256",
        "over the cap",
        directory(V0),
        header(V0 + "bomb", size=1 << 80),
        volumes=((1, 1),),
    ),
    Case("negative-size", _negative_size, "negative size"),
    Case("count-bomb", _count_bomb, "more than 1000 members"),
    Case("rle-bomb", _rle_bomb, "declares 1 files, 100663297 bytes"),
    Case("zero-bomb", _zero_bomb, "trailing bytes"),
    Case("short-stream", _short_stream, "ends .* short of the 10485760"),
    # broken streams
    Case("truncated-zstd", _truncated_zstd, "truncated"),
    Case("truncated-tar", _truncated_tar, "short of"),
    Case(
        "tar-without-end",
        lambda _r: zst(tar(directory(V0), end=False)),
        "without its end-of-archive marker",
    ),
    Case("tar-half-end", lambda _r: zst(tar(directory(V0), end=False) + bytes(512)), "incomplete"),
    Case("corrupt-header-middle", _corrupt_middle, "corrupt tar header at offset"),
    Case("hidden-after-end", _hidden_after_end, "data after its end-of-archive marker"),
    Case("zstd-trailing-garbage", _trailing_garbage, "trailing bytes"),
    Case("zstd-two-frames", _two_frames, "trailing bytes"),
    Case("zstd-skippable-frame", _skippable_after, "trailing bytes"),
    Case("zstd-corrupt-block", _corrupt_block, "corrupt|checksum"),
    Case("zstd-window-28", _window_28, "window .* larger than the cap"),
    Case("zstd-window-crafted", _window_crafted, "window .* larger than the cap"),
    Case("zstd-window-25", _window_25, "window .* larger than the cap"),
    Case("zstd-dictionary", _dictionary_frame, "dictionary"),
    Case("not-zstd", lambda _r: tar(directory(V0)), "not a zstd stream"),
    Case("gzip", lambda _r: b"\x1f\x8b\x08\x00" + bytes(100), "not a zstd stream"),
    Case("empty-input", lambda _r: b"", "empty"),
    Case("three-bytes", lambda _r: b"\x28\xb5\x2f", "not a zstd stream"),
]


def test_the_builders_make_archives_the_reader_accepts(tmp_path: Path) -> None:
    """The positive control: refusals below are the reader's doing, not broken builders."""
    long_name = "ü" * 60
    body = tar(
        directory("volumes/"),
        directory(V0),
        directory(V0 + "d"),
        file(V0 + "d/f", b"abc", mode=0o600),
        pax([("path", V0 + long_name), ("mtime", "1700000000.5")]) + file("x", b"12345"),
        directory("volumes/1/"),
        volumes=((2, 8), (0, 0)),
    )
    for archive in (zst(body), raw_frame([raw_block(body, last=True)])):
        staging = {0: tmp_path / "s0", 1: tmp_path / "s1"}
        for path in staging.values():
            path.mkdir()
        manifest = read_archive(io.BytesIO(archive), limits=LIMITS, staging=staging)
        assert [(v["files"], v["bytes"]) for v in manifest["volumes"]] == [(2, 8), (0, 0)]
        assert (staging[0] / "d" / "f").read_bytes() == b"abc"
        assert ((staging[0] / "d" / "f").stat().st_mode & 0o777) == 0o600
        assert (staging[0] / long_name).read_bytes() == b"12345"
        assert (staging[0] / long_name).stat().st_mtime_ns == 1_700_000_000_500_000_000
        for path in staging.values():
            shutil.rmtree(path)


def test_the_corpus_is_large_and_distinct() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


def _outside(root: Path, staging: list[Path]) -> dict[str, tuple[int, int]]:
    """Everything under root except the staging directories' contents: name -> (mode, size)."""
    seen: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here in staging:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            st = path.lstat()
            # A staging directory's own size grows with its entries on some filesystems.
            seen[str(path.relative_to(root))] = (st.st_mode, 0 if path in staging else st.st_size)
    return seen


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_archive_is_refused(case: Case, tmp_path: Path) -> None:
    data = case.build(tmp_path)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    staging = {i: deep / f"stage{i}" for i in range(case.volumes)}
    for path in staging.values():
        path.mkdir()
    (tmp_path / "canary").write_text("untouched")
    before = _outside(tmp_path, list(staging.values()))

    # Verify-only first: refused, and nothing written anywhere.
    with pytest.raises(ArchiveInvalid, match=case.reason) as verified:
        read_archive(io.BytesIO(data), limits=case.limits)
    assert verified.value.code == "invalid_archive"
    assert all(not any(p.iterdir()) for p in staging.values())

    tracemalloc.start()
    try:
        with pytest.raises(ArchiveInvalid, match=case.reason) as staged:
            read_archive(io.BytesIO(data), limits=case.limits, staging=staging)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert staged.value.code == "invalid_archive"
    assert str(staged.value) == str(verified.value)
    assert peak < MEMORY_CAP, f"peak {peak} bytes"
    assert _outside(tmp_path, list(staging.values())) == before
    assert (tmp_path / "canary").read_text() == "untouched"
    assert not list(tmp_path.rglob("escaped"))


def test_links_fifos_and_odd_names_are_data_created_inside_staging(tmp_path: Path) -> None:
    """What a container can make itself comes back as it was; nothing outside changes.

    Symlinks pointing anywhere are created as links (never followed), names with
    backslashes, control bytes and non-UTF-8 bytes are plain names, and a hard link
    joins an earlier file of its own volume.
    """
    body = tar2(
        directory(V0),
        symlink(V0 + "etc", "/etc"),
        symlink(V0 + "up", "../../.."),
        symlink(V0 + "abs", str(tmp_path / "escaped")),
        file(V0 + "..\\..\\escaped", b"literal"),
        file(V0 + "new\nline", b"n"),
        file(V0 + "esc\x1b[2J", b"e"),
        pax([("hdrcharset", "BINARY"), ("path", b"volumes/0/\xff\xfe")]) + file("x", b"b"),
        pax([("hdrcharset", "BINARY"), ("linkpath", b"\xe9/../..")]) + symlink(V0 + "bin", "x"),
        file(V0 + "f", b"data"),
        hardlink(V0 + "f-again", V0 + "f"),
        fifo(V0 + "pipe"),
        directory(V0 + "sub"),
        file(V0 + "sub/after-links", b"ok"),
        volumes=({"symlinks": 4, "files": 6, "hardlinks": 1, "fifos": 1, "dirs": 1, "bytes": 16},),
    )
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    stage = deep / "stage0"
    stage.mkdir()
    (tmp_path / "canary").write_text("untouched")
    before = _outside(tmp_path, [stage])

    assert read_archive(io.BytesIO(zst(body)), limits=LIMITS)["format"] == 2
    read_archive(io.BytesIO(zst(body)), limits=LIMITS, staging={0: stage})

    assert _outside(tmp_path, [stage]) == before
    assert not (tmp_path / "escaped").exists()
    assert os.readlink(stage / "etc") == "/etc" and (stage / "etc").is_symlink()
    assert os.readlink(stage / "up") == "../../.."
    assert os.readlink(bytes(stage / "bin")) == b"\xe9/../.."
    assert (stage / "..\\..\\escaped").read_bytes() == b"literal"
    assert (stage / "new\nline").read_bytes() == b"n"
    assert Path(os.fsdecode(bytes(stage) + b"/\xff\xfe")).read_bytes() == b"b"
    assert (stage / "f").stat().st_ino == (stage / "f-again").stat().st_ino
    assert stat.S_ISFIFO((stage / "pipe").lstat().st_mode)
    assert (stage / "sub" / "after-links").read_bytes() == b"ok"


def test_zero_runs_become_holes_and_header_maps_are_never_needed(tmp_path: Path) -> None:
    """An honest archive stores holes as zeros; the reader leaves whole zero blocks unwritten."""
    size = 64 * MiB
    marks = {0: b"head", 10 * MiB + 5: b"middle", size - 4: b"tail"}
    content = bytearray(size)
    for at, mark in marks.items():
        content[at : at + len(mark)] = mark
    body = tar2(
        directory(V0),
        file(V0 + "vm.img", bytes(content)),
        volumes=({"files": 1, "bytes": size},),
    )
    stage = tmp_path / "stage"
    stage.mkdir()
    read_archive(io.BytesIO(zst(body)), limits=LIMITS, staging={0: stage})
    restored = stage / "vm.img"
    assert restored.stat().st_size == size
    assert restored.stat().st_blocks * 512 <= 4 * 4096 + 8192
    with restored.open("rb") as f:
        for at, mark in marks.items():
            f.seek(at)
            assert f.read(len(mark)) == mark
