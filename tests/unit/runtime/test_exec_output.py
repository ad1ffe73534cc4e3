"""``runtime.docker.exec_output``: an exec's multiplexed output read as it comes, only its
last bytes kept, the reading ended by a deadline (issue 16: a hook printing 200 MB raised
the server's RSS by ~400 MB, and ``yes`` would have exhausted its memory)."""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
import types
from collections.abc import Iterator

import pytest

from moorage.runtime.docker.exec_output import Output, Tail, buffered, read

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


UPGRADED = (
    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)


class _Raw:
    """What docker-py's ``exec_start(socket=True)`` hands back, as it builds it: the raw
    ``SocketIO`` under ``http.client``'s buffered reader, with the response (requests'
    ``raw._fp`` is the ``http.client`` response) kept on it."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.raw = types.SimpleNamespace(_fp=response)


@contextlib.contextmanager
def _attach(ours: socket.socket) -> Iterator[socket.SocketIO]:
    response = http.client.HTTPResponse(ours)
    response.begin()  # reads the headers through its buffered reader, as requests does
    sock = response.fp.raw
    assert isinstance(sock, socket.SocketIO)
    sock._response = _Raw(response)  # type: ignore[attr-defined]
    try:
        yield sock
    finally:
        response.close()


@pytest.mark.parametrize(
    "first,later",
    [
        # A fast command on a busy server: the output came with the headers, in one read.
        (UPGRADED + frame(b"in-snapshot\n") + frame(b"done\n"), b""),
        # Half a frame with the headers, the rest after.
        (UPGRADED + frame(b"in-snapshot\n")[:5], frame(b"in-snapshot\n")[5:] + frame(b"done\n")),
        # The usual case: the headers alone, then the output.
        (UPGRADED, frame(b"in-snapshot\n") + frame(b"done\n")),
    ],
    ids=["with-headers", "split", "after-headers"],
)
def test_output_that_came_with_the_attach_headers_is_kept(first: bytes, later: bytes) -> None:
    """docker/docker-py#3332: the first frames may sit in the HTTP client's buffer, where a
    read of the raw socket never sees them; ``buffered`` hands them to ``read``."""
    ours, theirs = socket.socketpair()
    with ours:
        with theirs:
            theirs.sendall(first)

            def write() -> None:
                time.sleep(0.05)
                theirs.sendall(later)
                theirs.shutdown(socket.SHUT_WR)

            with _attach(ours) as sock:
                writer = threading.Thread(target=write)
                writer.start()
                got = read(sock, KEEP, time.monotonic() + 30, buffered(sock))
                writer.join()
    assert not got.timed_out and got.tail == b"in-snapshot\ndone\n"


def test_buffered_is_empty_for_a_socket_without_a_reader() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(frame(b"x"))
        assert buffered(ours) == b""  # a plain socket: its bytes stay for read()
        assert read(ours, KEEP, time.monotonic() + 0.3).tail == b"x"
