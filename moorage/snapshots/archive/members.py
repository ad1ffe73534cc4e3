"""The reader's untrusted tar stream, member by member, and the checks on one header.

``TarInput`` consumes the decompressed stream with exact reads; ``next_header``
answers the next member's header with its pax records applied and refuses a type,
owner, mtime or size no member may have; ``drain`` checks what follows the
end-of-archive marker. ``member_path``, ``check_xattrs`` and
``check_symlink_target`` apply the rules a single header must pass whatever came
before it (SPEC section 5). Nothing here touches the filesystem, and every
refusal is ``ArchiveInvalid`` (through ``format.fail``).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator

from moorage.snapshots.archive.format import (
    ACL_XATTRS,
    VOLUMES_DIR,
    XATTR_PREFIX,
    Limits,
    component_problem,
    fail,
    shown,
    xattr_allowed,
)
from moorage.snapshots.archive.tar import (
    AREG,
    BLOCK,
    DIR,
    FIFO,
    LNK,
    PAX,
    REFUSED_TYPES,
    REG,
    SYM,
    Header,
    apply_pax,
    blocks,
    parse_block,
    parse_pax,
)

_MAX_TRAILING_ZEROS = 8 << 20  # padding allowed after the end-of-archive marker
_MAX_ABS_MTIME_NS = (1 << 40) * 10**9  # anything further out is a forged header
_INDEX_DIGITS = b"0123456789"

# What each member type counts as in the manifest (SPEC section 5).
COUNTER = {REG: "files", AREG: "files", DIR: "dirs", SYM: "symlinks", LNK: "hardlinks"}
COUNTER[FIFO] = "fifos"


def _acl_blob(value: bytes) -> bool:
    """A POSIX ACL xattr as the kernel takes it: version 2, then 8-byte entries."""
    return (
        len(value) >= 4
        and (len(value) - 4) % 8 == 0
        and int.from_bytes(value[:4], "little") == 2
        and len(value) <= 4 + 8 * 1024
    )


def _plain_id(value: int) -> bool:
    """An id ``chown`` takes as itself (not -1, not past 32 bits)."""
    return 0 <= value < 0xFFFF_FFFF


class TarInput:
    """The decompressed tar stream, consumed in order.

    ``read`` answers up to ``n`` bytes (shorter only at the end) for headers;
    ``pieces`` yields file data as ``(chunk, start, end)`` slices without copying.
    """

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next = next_chunk
        self._chunk = b""
        self._pos = 0
        self.offset = 0

    def _fill(self) -> bool:
        if self._pos < len(self._chunk):
            return True
        self._chunk = self._next()
        self._pos = 0
        return bool(self._chunk)

    def read(self, n: int) -> bytes:
        parts = []
        while n and self._fill():
            take = min(n, len(self._chunk) - self._pos)
            parts.append(self._chunk[self._pos : self._pos + take])
            self._pos += take
            self.offset += take
            n -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def pieces(self, n: int) -> Iterator[tuple[bytes, int, int]]:
        while n and self._fill():
            start = self._pos
            end = min(len(self._chunk), start + n)
            self._pos = end
            self.offset += end - start
            n -= end - start
            yield self._chunk, start, end


def pax_cap(limits: Limits) -> int:
    """The most bytes a pax header may claim before it is read."""
    return max(64 * 1024, 2 * limits.max_name_bytes + limits.max_xattr_bytes + 4096)


def _block(inp: TarInput, what: str) -> tuple[int, bytes]:
    start = inp.offset
    buf = inp.read(BLOCK)
    if len(buf) < BLOCK:
        if not buf and what == "header":
            fail("the tar stream ends without its end-of-archive marker (truncated)")
        fail(f"the tar stream is truncated inside the {what} at offset {start}")
    return start, buf


def next_header(inp: TarInput, max_extended: int) -> Header | None:
    """The next member's header with its pax records applied; None at the end marker."""
    start, buf = _block(inp, "header")
    if not buf.strip(b"\0"):
        return None
    header = parse_block(buf, start)
    if header.kind == PAX:
        if header.size > max_extended:
            fail(
                f"the pax header at offset {start} claims {header.size} bytes, "
                f"over the cap of {max_extended}"
            )
        payload = inp.read(blocks(header.size))
        if len(payload) < blocks(header.size):
            fail(f"the tar stream is truncated inside the pax header at offset {start}")
        records = parse_pax(payload[: header.size], start)
        at, buf = _block(inp, "member after a pax header")
        if not buf.strip(b"\0"):
            fail(f"the pax header before offset {at} is not followed by a member")
        header = parse_block(buf, at)
        if header.kind == PAX:
            fail(f"two pax headers in a row at offset {at}")
        apply_pax(header, records)
        header.offset = start
    if header.kind in REFUSED_TYPES:
        fail(
            f"member {shown(header.name)} is {REFUSED_TYPES[header.kind]}; archives hold "
            "files, directories, symlinks, hard links and fifos only"
        )
    if header.kind not in COUNTER:
        fail(f"member {shown(header.name)} is of the unsupported type {header.kind!r}")
    if abs(header.mtime_ns) > _MAX_ABS_MTIME_NS:
        fail(f"member {shown(header.name)} has an implausible mtime")
    if not (_plain_id(header.uid) and _plain_id(header.gid)):
        fail(f"member {shown(header.name)} has an owner no file can have")
    if header.size and not header.is_reg:
        fail(f"member {shown(header.name)} is not a file but claims {header.size} bytes")
    return header


def drain(inp: TarInput) -> None:
    """After the first zero block, only zero padding may follow (at least one more block)."""
    zeros = BLOCK
    while chunk := inp.read(64 * 1024):
        if chunk.strip(b"\0"):
            fail(
                "the tar stream has data after its end-of-archive marker "
                "(a corrupt header or a hidden member)"
            )
        zeros += len(chunk)
        if zeros > _MAX_TRAILING_ZEROS:
            fail("the tar stream has more padding after its end than any writer makes")
    if zeros < 2 * BLOCK:
        fail("the tar stream's end-of-archive marker is incomplete (truncated)")


def skip_padding(inp: TarInput, size: int) -> None:
    pad = blocks(size) - size
    if pad and len(inp.read(pad)) != pad:
        fail("the tar stream ends inside a member's padding (truncated)")


def member_path(
    raw: bytes, is_dir: bool, limits: Limits, volumes: Container[int]
) -> tuple[int, list[bytes]]:
    """Validate a member's name; answer its volume index and components below it."""
    if len(raw) > limits.max_name_bytes:
        fail(f"member {shown(raw, 80)}: its name is over {limits.max_name_bytes} bytes")
    name = raw[:-1] if is_dir and raw.endswith(b"/") else raw
    if name.endswith(b"/"):
        what = "directory" if is_dir else "file"
        fail(f"member {shown(raw)}: a trailing slash on a {what} name")
    if name.startswith(b"/"):
        fail(f"member {shown(raw)}: absolute names are refused")
    parts = name.split(b"/")
    for part in parts:
        problem = component_problem(part, limits.max_component_bytes)
        if problem is not None:
            fail(f"member {shown(raw)}: its name has {problem}")
    if parts[0] != VOLUMES_DIR.encode() or len(parts) < 2:
        fail(f"member {shown(raw)} is outside {VOLUMES_DIR}/<index>/")
    digits = parts[1]
    if (
        len(digits) > 9
        or digits.strip(_INDEX_DIGITS)
        or (len(digits) > 1 and digits.startswith(b"0"))
    ):
        fail(f"member {shown(raw)}: {shown(digits)} is not a volume index")
    index = int(digits)
    if index not in volumes:
        fail(f"member {shown(raw)}: volume {index} is not in the manifest")
    below = parts[2:]
    if len(below) > limits.max_depth:
        fail(f"member {shown(raw)}: deeper than {limits.max_depth} levels")
    return index, below


def check_xattrs(member: Header, limits: Limits) -> None:
    """Attributes as staging would apply them, so verify-only refuses what staging
    would: user data on files and directories, an access ACL on those and fifos, a
    default ACL on directories only, each ACL a well-formed blob."""
    if not member.xattrs:
        return
    where = f"member {shown(member.name)}"
    size = 0
    for key, value in member.xattrs.items():
        if member.kind not in (REG, AREG, DIR, FIFO):
            fail(f"{where}: extended attributes on a link")
        if not xattr_allowed(key) or key == XATTR_PREFIX or "\0" in key:
            fail(f"{where}: the extended attribute {key!r} is not user data or a POSIX ACL")
        if key == ACL_XATTRS[1] and not member.is_dir:
            fail(f"{where}: a default ACL on something that is not a directory")
        if key in ACL_XATTRS and not _acl_blob(value):
            fail(f"{where}: its {key} is not a well-formed POSIX ACL")
        if key not in ACL_XATTRS and not (member.is_reg or member.is_dir):
            fail(f"{where}: user attributes on something that is not a file or directory")
        size += len(key) + len(value)
    if size > limits.max_xattr_bytes:
        fail(f"{where}: its extended attributes are over the cap")


def check_symlink_target(member: Header, limits: Limits) -> None:
    """A symlink's target is data: non-empty, no NUL, within the cap."""
    target = member.linkname
    if not target:
        fail(f"member {shown(member.name)}: a symlink with an empty target")
    if b"\0" in target:
        fail(f"member {shown(member.name)}: a symlink target with a NUL byte")
    if len(target) > limits.max_link_bytes:
        fail(f"member {shown(member.name)}: a symlink target over {limits.max_link_bytes} bytes")
