"""Frames on the worker channel: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

Used on both sides of the jail; standard library only. Requests (host -> guest) and replies (guest -> host)
travel on their own pipe pair, never on the handler's stdout or stderr. :class:`FrameBuffer` is the one frame
parser: the guest's blocking :class:`FrameReader` and the host's deadline-driven channel
(:mod:`.channel`) both feed it bytes and take whole frames out of it.
"""

from __future__ import annotations

import json
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "ChannelClosed",
    "FrameBuffer",
    "FrameReader",
    "FrameTooLarge",
    "frame",
    "read_frame",
    "write_frame",
]

HEADER = struct.Struct(">I")
MAX_FRAME = (1 << 32) - 1


class ChannelClosed(EOFError):
    """The other end closed the channel (the worker or the host went away)."""


class FrameTooLarge(ValueError):
    """A frame announced more bytes than the receiver accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes is over the {limit} byte limit")
        self.size = size
        self.limit = limit


def frame(body: bytes) -> bytes:
    """Header + body, ready for a single ``write``."""
    return HEADER.pack(len(body)) + body


def write_frame(fd: int, body: bytes) -> None:
    """Write one frame completely (loops over partial writes)."""
    data = memoryview(frame(body))
    while data:
        written = os.write(fd, data)
        data = data[written:]


class FrameBuffer:
    """Bytes received so far; :meth:`pop` takes the next whole frame body out, or None while it is incomplete.

    ``limit`` bounds the body a header may announce: a larger one raises :class:`FrameTooLarge` as soon as
    the header is seen, before any of the body is buffered.
    """

    __slots__ = ("buf", "limit")

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.buf = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> None:
        self.buf += data

    def pop(self) -> bytes | None:
        buf = self.buf
        if len(buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(buf)
        if size > self.limit:
            raise FrameTooLarge(size, self.limit)
        end = HEADER.size + size
        if len(buf) < end:
            return None
        body = bytes(buf[HEADER.size : end])
        del buf[:end]
        return body

    def __len__(self) -> int:
        return len(self.buf)


class FrameReader:
    """Blocking reads of whole frames (the guest's side): one ``read`` usually brings header and body together."""

    def __init__(self, fd: int, limit: int = MAX_FRAME) -> None:
        self.fd = fd
        self.frames = FrameBuffer(limit)

    def read_body(self) -> bytes:
        while True:
            body = self.frames.pop()
            if body is not None:
                return body
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise ChannelClosed("channel closed")
            self.frames.feed(chunk)

    def read(self) -> Any:
        return json.loads(self.read_body())


def read_frame(fd: int, limit: int = MAX_FRAME) -> Any:
    """Read one frame (blocking) and decode its JSON body (nothing past the frame is consumed)."""

    def exact(n: int) -> bytes:
        chunks = []
        while n:
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise ChannelClosed("channel closed")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    (size,) = HEADER.unpack(exact(HEADER.size))
    if size > limit:
        raise FrameTooLarge(size, limit)
    return json.loads(exact(size))
