"""``runtime.docker.exec_output``: an exec's multiplexed output read as it comes, only its
last bytes kept, the reading ended by a deadline (issue 16: a hook printing 200 MB raised
the server's RSS by ~400 MB, and ``yes`` would have exhausted its memory)."""

from __future__ import annotations

import socket
import struct
import threading
import time

from moorage.runtime.docker.exec_output import Output, Tail, read

KEEP = 64 * 1024


def frame(payload: bytes, stream: int = 1) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_frames_split_anywhere_demultiplex_to_the_payload() -> None:
    data = frame(b"hello ") + frame(b"from stderr\n", 2) + frame(b"") + frame(b"end\n")
    for step in (1, 3, 7, 8, 9, len(data)):
        tail = Tail(KEEP)
        for at in range(0, len(data), step):
            tail.feed(data[at : at + step])
        assert bytes(tail.kept) == b"hello from stderr\nend\n", step
        assert tail.total == len(b"hello from stderr\nend\n")


def test_far_more_than_the_bound_keeps_only_its_last_bytes() -> None:
    tail = Tail(KEEP)
    chunk = frame(b"x" * 60_000)
    for _ in range(1000):  # 60 MB in all, fed as it would come
        tail.feed(chunk)
        assert len(tail.kept) <= KEEP  # never more held, at any point
    tail.feed(frame(b"the end\n"))
    assert len(tail.kept) == KEEP and bytes(tail.kept).endswith(b"x" * 100 + b"the end\n")
    assert tail.total == 60_000_000 + 8
    # One frame larger than the bound keeps its end too.
    big = Tail(10)
    big.feed(frame(b"0123456789abcdef"))
    assert bytes(big.kept) == b"6789abcdef"
    out = Output(bytes(tail.kept), tail.total, False)
    assert out.dropped == tail.total - KEEP
    assert out.text().startswith(f"[{out.dropped} earlier bytes of output left out]\n")
    assert Output(b"short\n", 6, False).text() == "short\n"


def test_read_takes_a_stream_larger_than_the_bound_to_its_end() -> None:
    ours, theirs = socket.socketpair()

    def write() -> None:
        with theirs:
            for _ in range(800):  # ~50 MB, far beyond what a socket buffers
                theirs.sendall(frame(b"\0" * 65_536))
            theirs.sendall(frame(b"done\n", 2))

    writer = threading.Thread(target=write)
    writer.start()
    with ours:
        got = read(ours, KEEP, time.monotonic() + 120)
    writer.join()
    assert not got.timed_out
    assert got.total == 800 * 65_536 + 5 and len(got.tail) == KEEP
    assert got.tail.endswith(b"\0done\n")


def test_a_deadline_ends_the_reading_of_a_command_that_goes_on() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(frame(b"started\n"))  # then nothing more, and the stream stays open
    with ours, theirs:
        got = read(ours, KEEP, time.monotonic() + 0.3)
    assert got.timed_out and got.tail == b"started\n"
    # A deadline already past reads nothing.
    a, b = socket.socketpair()
    with a, b:
        assert read(a, KEEP, time.monotonic() - 1) == Output(b"", 0, True)
