"""The snapshot archive (SPEC section 5): one zstd frame holding a pax tar stream.

    format.py   constants, caps, the name rule, the manifest (formats 1 and 2)
    tar.py      tar framing: headers out (by hand) and in (strictly)
    zstd.py     one untrusted zstd frame, decompressed on a thread of its own
    writer.py   volume trees -> a durable archive, streamed in two passes
    scan.py       the first pass: a volume walked into the spool, counted
    stream.py     the second pass: spool records -> tar bytes, files read by extent
    pipe.py       tar bytes from the producer thread to zstd on the caller's
    reader.py   an untrusted archive -> verified, or staged into empty directories
    members.py    the tar stream in, member by member; the checks on one header
    tree.py       each volume's open directories: where a member may land
    extract.py    what each validated entry needs on disk
    durable.py  syncfs/fsync of what the reader staged

``write_archive`` and ``read_archive`` are the only ways in; import, restore,
drills and off-site copies all go through them.
"""

from moorage.snapshots.archive.format import (
    FORMAT_VERSION,
    READABLE_FORMATS,
    Limits,
    VolumeSource,
    WriteResult,
)
from moorage.snapshots.archive.reader import read_archive
from moorage.snapshots.archive.writer import write_archive

__all__ = [
    "FORMAT_VERSION",
    "READABLE_FORMATS",
    "Limits",
    "VolumeSource",
    "WriteResult",
    "read_archive",
    "write_archive",
]
