"""Tar framing (POSIX pax, IEEE Std 1003.1-2017 ``pax`` "Extended header"): headers out and in.

The writer builds headers by hand (``TarInfo.tobuf`` costs ~0.2 ms a member and
cannot express raw-byte names); the reader parses them strictly from raw blocks,
using ``tarfile``'s own numeric-field and checksum helpers. Names and link
targets are raw bytes end to end: a pax ``path``/``linkpath`` that is not UTF-8
is written with ``hdrcharset=BINARY`` (POSIX's escape for exactly this) and read
back byte for byte.

This module never touches the filesystem, never reads past a header's claimed
size cap, and never accepts a header it cannot account for (GNU sparse maps, long
names, global headers and unknown keywords are refused, never skipped).
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field

from moorage.snapshots.archive.format import MODE_MASK, fail

BLOCK = tarfile.BLOCKSIZE
USTAR_MAX = 8**11  # sizes and mtimes at or past this go into pax records
ID_MAX = 8**7  # ustar's uid/gid fields; larger ids go into pax records

REG = tarfile.REGTYPE  # b"0"
AREG = tarfile.AREGTYPE  # b"\0", an old spelling of a regular file
LNK = tarfile.LNKTYPE  # b"1"
SYM = tarfile.SYMTYPE  # b"2"
DIR = tarfile.DIRTYPE  # b"5"
FIFO = tarfile.FIFOTYPE  # b"6"
PAX = tarfile.XHDTYPE  # b"x"

REFUSED_TYPES = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a GNU sparse file",
    tarfile.GNUTYPE_LONGNAME: "a GNU long-name header",
    tarfile.GNUTYPE_LONGLINK: "a GNU long-link header",
    tarfile.XGLTYPE: "a global pax header",
    tarfile.SOLARIS_XHDTYPE: "a Solaris extended header",
}

PAX_UTF8 = b"ISO-IR 10646 2000 UTF-8"
PAX_BINARY = b"BINARY"
XATTR_KEY = "SCHILY.xattr."
_APPLIED = {"path", "linkpath", "size", "mtime", "uid", "gid", "hdrcharset"}
_IGNORED = {"atime", "ctime", "uname", "gname", "comment"}
_IGNORED_PREFIXES = ("SCHILY.", "LIBARCHIVE.")
_DIGITS = re.compile(rb"[0-9]{1,20}")
_MTIME = re.compile(rb"(-?)([0-9]{1,15})(?:\.([0-9]{1,30}))?")


def blocks(size: int) -> int:
    """``size`` rounded up to whole 512-byte blocks."""
    return -(-size // BLOCK) * BLOCK


# ---------------------------------------------------------------------------
# Writing


def format_ns(ns: int) -> bytes:
    """Nanoseconds as pax's decimal seconds, shortest exact spelling."""
    sign = "-" if ns < 0 else ""
    seconds, fraction = divmod(abs(ns), 10**9)
    return f"{sign}{seconds}.{fraction:09d}".rstrip("0").rstrip(".").encode()


def pax_record(keyword: bytes, value: bytes) -> bytes:
    """One ``"<len> <keyword>=<value>\\n"`` record; the length counts itself."""
    body = b" " + keyword + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _ustar_block(
    name: bytes,
    kind: bytes,
    size: int,
    mode: int,
    mtime: int,
    uid: int,
    gid: int,
    linkname: bytes = b"",
) -> bytes:
    block = b"".join(
        (
            name[:100].ljust(100, b"\0"),
            b"%07o\0" % mode,
            b"%07o\0" % (uid if 0 <= uid < ID_MAX else 0),
            b"%07o\0" % (gid if 0 <= gid < ID_MAX else 0),
            b"%011o\0" % size,
            b"%011o\0" % mtime,
            b" " * 8,  # the checksum, counted as spaces
            kind,
            linkname[:100].ljust(100, b"\0"),
            tarfile.POSIX_MAGIC,
            bytes(64),  # uname, gname
            b"0000000\0" * 2,  # devmajor, devminor
            bytes(167),  # prefix and the unused tail
        )
    )
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _placeholder(name: bytes) -> bytes:
    """The ustar field's stand-in when the real name lives in a pax record."""
    return bytes(b if 32 <= b < 127 else 0x3F for b in name[:100])


def member_header(
    name: bytes,
    kind: bytes,
    *,
    size: int = 0,
    mode: int = 0o644,
    mtime_ns: int = 0,
    uid: int = 0,
    gid: int = 0,
    linkname: bytes = b"",
    xattrs: dict[str, bytes] | None = None,
) -> bytes:
    """One member's header, preceded by a pax header when ustar fields cannot hold it.

    ``name`` and ``linkname`` are raw bytes; a directory's name gets its trailing
    slash here. ``mode`` is masked to ``MODE_MASK``; ``xattrs`` go into
    ``SCHILY.xattr.<name>`` records, the spelling GNU tar and libarchive read.
    """
    if kind == DIR and not name.endswith(b"/"):
        name += b"/"
    records = []
    binary = False
    ustar_name, ustar_link = name, linkname
    if len(name) > 100 or not name.isascii():
        records.append(pax_record(b"path", name))
        binary |= not _is_utf8(name)
        ustar_name = _placeholder(name)
    if len(linkname) > 100 or not linkname.isascii():
        records.append(pax_record(b"linkpath", linkname))
        binary |= not _is_utf8(linkname)
        ustar_link = _placeholder(linkname)
    if binary:
        records.insert(0, pax_record(b"hdrcharset", PAX_BINARY))
    if size >= USTAR_MAX:
        records.append(pax_record(b"size", b"%d" % size))
    seconds = mtime_ns // 10**9
    if mtime_ns % 10**9 or not 0 <= seconds < USTAR_MAX:
        records.append(pax_record(b"mtime", format_ns(mtime_ns)))
    if not 0 <= uid < ID_MAX:
        records.append(pax_record(b"uid", b"%d" % uid))
    if not 0 <= gid < ID_MAX:
        records.append(pax_record(b"gid", b"%d" % gid))
    for key, value in sorted((xattrs or {}).items()):
        records.append(pax_record((XATTR_KEY + key).encode(), value))
    clamped = min(max(seconds, 0), USTAR_MAX - 1)
    header = _ustar_block(
        ustar_name,
        kind,
        size if size < USTAR_MAX else 0,
        mode & MODE_MASK,
        clamped,
        uid,
        gid,
        ustar_link,
    )
    if not records:
        return header
    payload = b"".join(records)
    pax = _ustar_block(b"././@PaxHeader", PAX, len(payload), 0o644, clamped, 0, 0)
    return pax + payload + bytes(-len(payload) % BLOCK) + header


# ---------------------------------------------------------------------------
# Reading


@dataclass
class Header:
    """One member as its (pax-amended) header describes it. Names are raw bytes."""

    offset: int
    kind: bytes
    name: bytes
    linkname: bytes
    size: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_dir(self) -> bool:
        return self.kind == DIR

    @property
    def is_reg(self) -> bool:
        return self.kind in (REG, AREG)


def _field(raw: bytes) -> bytes:
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]


def _nti(raw: bytes) -> int:
    """A numeric field: NUL/space-terminated octal, or GNU base-256 (0x80 +, 0xFF -)."""
    if raw[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(raw[1:], "big")
        return value - 256 ** (len(raw) - 1) if raw[0] == 0xFF else value
    text = _field(raw).strip(b" ")
    if text.strip(b"01234567"):
        raise ValueError(f"{raw!r} is not octal")
    return int(text or b"0", 8)


def _checksum_ok(buf: bytes, checksum: int) -> bool:
    """The header checksum, as unsigned bytes or (old tars) as signed bytes."""
    unsigned = 256 + sum(buf[:148]) + sum(buf[156:512])
    if checksum == unsigned:
        return True
    high = sum(1 for b in buf[:148] + buf[156:512] if b > 127)
    return checksum == unsigned - 256 * high


def _number(raw: bytes, what: str, offset: int) -> int:
    try:
        return _nti(raw)
    except ValueError as exc:
        fail(f"corrupt tar header at offset {offset}: bad {what} field ({exc})")


def parse_block(buf: bytes, offset: int) -> Header:
    """Parse one 512-byte ustar header strictly (checksum, magic, numeric fields)."""
    checksum = _number(buf[148:156], "checksum", offset)
    if not _checksum_ok(buf, checksum):
        fail(f"corrupt tar header at offset {offset}: bad checksum")
    if buf[257:265] != tarfile.POSIX_MAGIC:
        fail(f"the header at offset {offset} is not a POSIX ustar header")
    size = _number(buf[124:136], "size", offset)
    if size < 0:
        fail(f"the header at offset {offset} claims a negative size")
    name = _field(buf[0:100])
    prefix = _field(buf[345:500])
    return Header(
        offset=offset,
        kind=buf[156:157],
        name=prefix + b"/" + name if prefix else name,
        linkname=_field(buf[157:257]),
        size=size,
        mode=_number(buf[100:108], "mode", offset),
        uid=_number(buf[108:116], "uid", offset),
        gid=_number(buf[116:124], "gid", offset),
        mtime_ns=_number(buf[136:148], "mtime", offset) * 10**9,
    )


def _decode(value: bytes, where: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{where} holds text that is not UTF-8")


def parse_pax(payload: bytes, offset: int) -> dict[str, bytes]:
    """Parse one extended header strictly: exact records, no repeated keyword.

    Answers keyword -> raw value. Sparse maps (``GNU.sparse.*``) and unknown
    keywords are refused; ``SCHILY.xattr.*`` values are binary, every other value
    must be UTF-8 except ``path``/``linkpath`` under ``hdrcharset=BINARY``.
    """
    records: dict[str, bytes] = {}
    pos = 0
    where = f"the pax header at offset {offset}"
    while pos < len(payload):
        space = payload.find(b" ", pos, pos + 12)
        digits = payload[pos:space] if space > pos else b""
        if not digits.isdigit() or digits.startswith(b"0"):
            fail(f"{where} is malformed (bad record length)")
        end = pos + int(digits)
        if end > len(payload) or end <= space + 2 or payload[end - 1 : end] != b"\n":
            fail(f"{where} is malformed (a record overruns)")
        keyword_raw, eq, value = payload[space + 1 : end - 1].partition(b"=")
        if not eq or not keyword_raw:
            fail(f"{where} is malformed (a record has no keyword)")
        keyword = _decode(keyword_raw, where)
        if keyword in records:
            fail(f"{where} sets {keyword!r} twice")
        if keyword.startswith("GNU.sparse."):
            fail(f"{where} describes a sparse member ({keyword}); sparse members are refused")
        if keyword == "hdrcharset" and value not in (PAX_UTF8, PAX_BINARY):
            fail(f"{where} declares the unknown charset {value[:40]!r}")
        if not (
            keyword in _APPLIED or keyword in _IGNORED or keyword.startswith(_IGNORED_PREFIXES)
        ):
            fail(f"{where} uses the unsupported keyword {keyword!r}")
        if not keyword.startswith(XATTR_KEY) and keyword not in ("path", "linkpath"):
            _decode(value, where)
        records[keyword] = value
        pos = end
    if records.get("hdrcharset") != PAX_BINARY:
        for key in ("path", "linkpath"):
            if key in records:
                _decode(records[key], where)
    return records


def apply_pax(header: Header, pax: dict[str, bytes]) -> None:
    """Let an extended header's records override the ustar fields they name."""
    shown = repr(header.name[:200])
    if "path" in pax:
        header.name = pax["path"]
    if "linkpath" in pax:
        header.linkname = pax["linkpath"]
    if "size" in pax:
        if not _DIGITS.fullmatch(pax["size"]):
            fail(f"member {shown}: pax size {pax['size']!r} is not a decimal number")
        size = int(pax["size"])
        if header.size not in (0, size):
            fail(f"member {shown}: pax size {size} conflicts with the header's {header.size}")
        header.size = size
    if "mtime" in pax:
        match = _MTIME.fullmatch(pax["mtime"])
        if match is None:
            fail(f"member {shown}: pax mtime {pax['mtime']!r} is not a number")
        sign, seconds, fraction = match.groups()
        ns = int(seconds) * 10**9 + int((fraction or b"")[:9].ljust(9, b"0"))
        header.mtime_ns = -ns if sign else ns
    for key in ("uid", "gid"):
        if key in pax:
            if not _DIGITS.fullmatch(pax[key]):
                fail(f"member {shown}: pax {key} {pax[key]!r} is not a decimal number")
            setattr(header, key, int(pax[key]))
    header.xattrs = {
        key[len(XATTR_KEY) :]: value for key, value in pax.items() if key.startswith(XATTR_KEY)
    }
