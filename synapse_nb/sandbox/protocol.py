"""Frames on the worker channel: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

Used on both sides of the jail; standard library only. Requests (host -> guest) and replies (guest -> host)
travel on their own pipe pair, never on the handler's stdout or stderr.
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


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise ChannelClosed("channel closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class FrameReader:
    """Reads frames with as few syscalls as possible: one ``read`` usually brings header and body together."""

    def __init__(self, fd: int, limit: int = MAX_FRAME) -> None:
        self.fd = fd
        self.limit = limit
        self.buf = bytearray()

    def read(self) -> Any:
        buf = self.buf
        while True:
            if len(buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(buf)
                if size > self.limit:
                    raise FrameTooLarge(size, self.limit)
                end = HEADER.size + size
                if len(buf) >= end:
                    body = bytes(buf[HEADER.size : end])
                    del buf[:end]
                    return json.loads(body)
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise ChannelClosed("channel closed")
            buf += chunk


def read_frame(fd: int, limit: int = MAX_FRAME) -> Any:
    """Read one frame (blocking) and decode its JSON body."""
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    if size > limit:
        raise FrameTooLarge(size, limit)
    return json.loads(_read_exact(fd, size))
