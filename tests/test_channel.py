"""The worker channel as a protocol: every frame from the guest is checked; a forged one is a violation.

Pure tests (no jail): :func:`parse_frame` on hand-made frames, and :class:`Channel` on a pipe pair.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from synapse_nb.sandbox.channel import (
    Channel,
    ChannelDead,
    ChannelLate,
    ProtocolViolation,
    Reply,
    SessionRequest,
    parse_frame,
)
from synapse_nb.sandbox.protocol import FrameBuffer, FrameTooLarge, frame


def test_a_well_formed_reply_to_the_pending_request_is_accepted() -> None:
    body = b'{"id":7,"ok":true,"ms":0.5,"state":{"n":1},"stdout":"hi","result":{"x":[1,2]}}'
    reply = parse_frame(body, 7)
    assert isinstance(reply, Reply)
    assert (reply.id, reply.ok, reply.result, reply.state, reply.stdout, reply.ms) == (
        7, True, {"x": [1, 2]}, {"n": 1}, "hi", 0.5,
    )  # fmt: skip


def test_an_error_reply_keeps_its_error_object() -> None:
    reply = parse_frame(b'{"id":3,"ok":false,"error":{"kind":"exception","type":"ValueError","message":"no"}}', 3)
    assert isinstance(reply, Reply)
    assert reply.error == {"kind": "exception", "type": "ValueError", "message": "no"}


def test_a_session_request_is_recognised() -> None:
    request = parse_frame(b'{"op":"session","id":"s4","action":"set","key":"k","value":[1],"ttl":2}', 9)
    assert request == SessionRequest("s4", "set", "k", [1], 2.0)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"id": 1, "ok": true, "result": "\\ud800"}', "lone surrogate"),
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 130 levels"),
        (b'"just a string"', "not an object but str"),
        (b"[1, 2]", "not an object but list"),
        (b'{"id": 1, "ok": true, "result": ' + b"9" * 5000 + b"}", "an integer of 5000 digits"),
        (b'{"id": "1", "ok": true}', "without an integer id"),
        (b'{"id": 2, "ok": true}', "a reply to request 2 while request 1 was pending"),
        (b'{"id": 1, "ok": "yes"}', "'ok' is not a boolean"),
        (b'{"id": 1, "ok": false, "error": "boom"}', "without an error object"),
        (b'{"id": 1, "ok": false, "error": {"kind": 5}}', "error.kind is not a string"),
        (b'{"id": 1, "ok": false, "error": {"kind": "x", "details": "a"}}', "error.details is not a list"),
        (b'{"id": 1, "ok": false, "error": {"kind": "x", "problems": [1]}}', "error.problems is not a list of obj"),
        (b'{"id": 1, "ok": true, "state": [1]}', "self.state is not an object"),
        (b'{"id": 1, "ok": true, "ms": -1}', "ms is not a non-negative number"),
        (b'{"id": 1, "ok": true, "stdout": 7}', "stdout is not a string"),
        (b'{"id": 1, "ok": true, "extra": 1}', "unknown fields 'extra'"),
        (b'{"op": "shell", "id": "s1"}', "unknown operation 'shell'"),
        (b'{"op": "session", "id": 5, "action": "get", "key": "k"}', "without a valid id"),
        (b'{"op": "session", "id": "s1", "action": "drop", "key": "k"}', "unknown session action 'drop'"),
        (b'{"op": "session", "id": "s1", "action": "get", "key": ""}', "a session key must be a string"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_anything_the_guest_could_not_have_sent_is_a_violation(body: bytes, why: str) -> None:
    with pytest.raises(ProtocolViolation, match=why):
        parse_frame(body, 1)


def test_the_frame_buffer_refuses_an_oversized_header_before_buffering_the_body() -> None:
    buffer = FrameBuffer(limit=10)
    buffer.feed(frame(b"x" * 11)[:6])
    with pytest.raises(FrameTooLarge, match="frame of 11 bytes is over the 10 byte limit"):
        buffer.pop()


def test_frames_split_across_reads_are_reassembled_in_order() -> None:
    buffer = FrameBuffer()
    data = frame(b'{"a":1}') + frame(b'{"b":2}')
    for i in range(len(data)):
        buffer.feed(data[i : i + 1])
    assert [buffer.pop(), buffer.pop(), buffer.pop()] == [b'{"a":1}', b'{"b":2}', None]


def test_the_channel_reads_under_a_deadline_and_notices_a_hang_up() -> None:
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    channel = Channel(req_w, rep_r, limit=1 << 20)
    try:
        channel.send(json.dumps({"op": "call", "id": 1}).encode())
        assert os.read(req_r, 100)[4:] == b'{"op": "call", "id": 1}'
        t0 = time.monotonic()
        with pytest.raises(ChannelLate):
            channel.receive(time.monotonic() + 0.05)
        assert time.monotonic() - t0 < 1
        os.write(rep_w, frame(b'{"id":1,"ok":true}'))
        assert channel.receive(time.monotonic() + 1) == b'{"id":1,"ok":true}'
        assert not channel.hung_up()
        os.close(rep_w)
        assert channel.hung_up()
        with pytest.raises(ChannelDead):
            channel.receive(time.monotonic() + 1)
    finally:
        channel.close()
        os.close(req_r)
