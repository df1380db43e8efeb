"""The host's end of the worker channel: a protocol, not a trust.

The plugin runs in the same process as the guest runtime, so it can write anything to the reply pipe: garbage,
invalid UTF-8, a frame that is not an object, a forged reply for a call that has not been answered yet. The host
therefore parses every frame against the protocol and accepts only what the guest runtime could have sent:

* a **reply** ``{"id": N, "ok": true, "ms": .., "result": .., "state"?: {..}, "stdout"?: "..", "stderr"?: ".."}``
  or ``{"id": N, "ok": false, "error": {"kind": "..", ...}, ...}`` whose ``id`` is exactly the id of the request
  the host is waiting for (the start reply has id 0 and carries ``class``, ``setup_ms`` and ``pid``);
* a **session request** ``{"op": "session", "id": "sN", "action": "get|set|delete", "key": "..", ...}`` in the
  middle of a call.

Anything else is a :class:`ProtocolViolation`: the worker that sent it is killed and the call fails with exit 7,
so one stray frame can never shift results between calls (call 2 can never receive call 1's reply).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import time
from dataclasses import dataclass
from typing import Any

from .. import jsonsafe
from ..errors import ValidationError
from .protocol import FrameBuffer, FrameTooLarge, frame

__all__ = [
    "Channel",
    "ChannelDead",
    "ChannelLate",
    "FrameTooLarge",
    "ProtocolViolation",
    "Reply",
    "SessionRequest",
    "parse_frame",
]

MAX_SESSION_KEY = 1024
# Results and state are at most this deep (the host validates them recursively); the reply adds one level.
MAX_FRAME_DEPTH = jsonsafe.MAX_DEPTH + 2
_PLAIN_REPLY_KEYS = frozenset({"id", "ok", "ms", "result", "state"})  # more: logs, an error or the start reply
_MAX_MS = 1e12
_REPLY_KEYS = frozenset({"id", "ok", "ms", "result", "state", "stdout", "stderr", "error", "class", "setup_ms", "pid"})
_SESSION_KEYS = frozenset({"op", "id", "action", "key", "value", "ttl"})
_ERROR_STRINGS = (
    "kind", "message", "type", "location", "pointer", "schema", "code", "traceback", "exc_type", "limit_name",
)  # fmt: skip
_ERROR_INTS = ("size", "limit", "errno")


class ProtocolViolation(Exception):
    """A frame on the reply channel that the guest runtime could not have sent."""


class ChannelDead(Exception):
    """The reply channel closed: the worker is gone."""


class ChannelLate(Exception):
    """The deadline passed before a whole frame arrived."""


@dataclass(slots=True)
class Reply:
    """A checked reply to request ``id`` (slots, not frozen: one is built per call, on the hot path)."""

    id: int
    ok: bool
    result: Any = None
    ms: float = 0.0
    state: dict[str, Any] | None = None
    stdout: str = ""
    stderr: str = ""
    error: dict[str, Any] | None = None
    handler_class: str = ""
    setup_ms: float = 0.0
    pid: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The reply in the shape :func:`~.diagnosis.reply_error` reads."""
        return {"id": self.id, "ok": self.ok, "error": self.error or {}, "stderr": self.stderr}


@dataclass(frozen=True)
class SessionRequest:
    """The guest asks the host's session store for one operation (``context.session``)."""

    id: str
    action: str
    key: str
    value: Any = None
    ttl: float | None = None


def _number(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ProtocolViolation(f"{what} is not a non-negative number")
    return float(value)


def _string(value: Any, what: str) -> str:
    if type(value) is not str:
        raise ProtocolViolation(f"{what} is not a string")
    return value


def _check_error(error: Any) -> dict[str, Any]:
    if type(error) is not dict:
        raise ProtocolViolation("an error reply without an error object")
    _string(error.get("kind"), "error.kind")
    for key in _ERROR_STRINGS:
        if error.get(key) is not None:
            _string(error[key], f"error.{key}")
    for key in _ERROR_INTS:
        if error.get(key) is not None and type(error[key]) is not int:
            raise ProtocolViolation(f"error.{key} is not an integer")
    details = error.get("details")
    if details is not None and (type(details) is not list or any(type(d) is not str for d in details)):
        raise ProtocolViolation("error.details is not a list of strings")
    problems = error.get("problems")
    if problems is not None and (type(problems) is not list or any(type(p) is not dict for p in problems)):
        raise ProtocolViolation("error.problems is not a list of objects")
    return error


def _session(msg: dict[str, Any]) -> SessionRequest:
    if not set(msg) <= _SESSION_KEYS or msg.get("op") != "session":
        raise ProtocolViolation(f"unknown operation {str(msg.get('op'))[:40]!r} from the guest")
    rid, action, key = msg.get("id"), msg.get("action"), msg.get("key")
    if type(rid) is not str or not rid.startswith("s") or not rid[1:].isdigit():
        raise ProtocolViolation("a session request without a valid id")
    if action not in ("get", "set", "delete"):
        raise ProtocolViolation(f"unknown session action {str(action)[:40]!r}")
    if type(key) is not str or not key or len(key) > MAX_SESSION_KEY:
        raise ProtocolViolation(f"a session key must be a string of 1 to {MAX_SESSION_KEY} characters")
    ttl = msg.get("ttl")
    return SessionRequest(rid, action, key, msg.get("value"), None if ttl is None else _number(ttl, "ttl"))


def parse_frame(body: bytes, expected_id: int) -> Reply | SessionRequest:
    """Check one frame from the guest; :class:`ProtocolViolation` says what is wrong with it."""
    try:
        msg = jsonsafe.loads(body, what="a frame", max_depth=MAX_FRAME_DEPTH)
    except ValidationError as exc:  # not UTF-8, not JSON, too deep, a huge number, a lone surrogate...
        raise ProtocolViolation(f"a frame that is not usable JSON: {exc.message[:160]}") from None
    if type(msg) is not dict:
        raise ProtocolViolation(f"a frame that is not an object but {type(msg).__name__}")
    if "op" in msg:
        return _session(msg)
    if not set(msg) <= _REPLY_KEYS:
        unknown = sorted(set(msg) - _REPLY_KEYS)[:3]
        raise ProtocolViolation(f"a reply with unknown fields {', '.join(repr(k[:40]) for k in unknown)}")
    rid = msg.get("id")
    if type(rid) is not int:
        raise ProtocolViolation("a reply without an integer id")
    if rid != expected_id:
        raise ProtocolViolation(f"a reply to request {rid} while request {expected_id} was pending")
    ok = msg.get("ok")
    if type(ok) is not bool:
        raise ProtocolViolation("a reply whose 'ok' is not a boolean")
    state = msg.get("state")
    if state is not None and type(state) is not dict:
        raise ProtocolViolation("self.state is not an object")
    ms = msg.get("ms", 0.0)
    if type(ms) is not float or not 0.0 <= ms < _MAX_MS:  # the guest always writes a float ("%.3f")
        ms = _number(ms, "ms")
    if not ok or not msg.keys() <= _PLAIN_REPLY_KEYS:  # logs, an error or the start reply's fields: check each
        pid = msg.get("pid", 0)
        if type(pid) is not int:
            raise ProtocolViolation("pid is not an integer")
        return Reply(
            rid, ok, msg.get("result"), ms, state, _string(msg.get("stdout", ""), "stdout"),
            _string(msg.get("stderr", ""), "stderr"), None if ok else _check_error(msg.get("error")),
            _string(msg.get("class", ""), "class"), _number(msg.get("setup_ms", 0.0), "setup_ms"), pid,
        )  # fmt: skip
    return Reply(rid, ok, msg.get("result"), ms, state)


PIPE_CHUNK = 1 << 16
"""One read's size: a pipe holds 64 KiB, and asking for more makes every small read allocate (and free) a large
buffer, which costs more than the round trip itself."""


class Channel:
    """The request pipe (write end) and the reply pipe (read end) of one worker, read under deadlines."""

    def __init__(self, req_w: int, rep_r: int, *, limit: int) -> None:
        self.req_w = req_w
        self.rep_r = rep_r
        self.frames = FrameBuffer(limit)
        self._poll = select.poll()
        self._poll.register(rep_r, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._idle_poll = select.poll()  # its own poll object: a call may be polling the same fd
        self._idle_poll.register(rep_r, select.POLLHUP | select.POLLERR)

    def send(self, body: bytes) -> None:
        self.send_framed(frame(body))

    def send_framed(self, frames: bytes) -> None:
        """Write already framed bytes completely; :class:`ChannelDead` if the worker is gone."""
        data = memoryview(frames)
        try:
            while data:
                data = data[os.write(self.req_w, data) :]
        except OSError as exc:
            raise ChannelDead() from exc

    def receive(self, deadline: float) -> bytes:
        """The next whole frame body; :class:`ChannelLate` after ``deadline`` (monotonic), :class:`ChannelDead`
        when the pipe closes, :class:`FrameTooLarge` for a header over the limit."""
        frames = self.frames
        while True:
            body = frames.pop()
            if body is not None:
                return body
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelLate()
            if not self._poll.poll(max(1, int(remaining * 1000 + 0.999))):
                continue
            try:
                chunk = os.read(self.rep_r, PIPE_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                raise ChannelDead()
            frames.feed(chunk)

    def hung_up(self) -> bool:
        """Has the other end gone away? (A zero-timeout poll; no read.)"""
        events = self._idle_poll.poll(0)
        return any(event & (select.POLLHUP | select.POLLERR) for _fd, event in events)

    def close(self) -> None:
        for fd in (self.req_w, self.rep_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.req_w = self.rep_r = -1
