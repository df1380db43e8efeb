"""Payload codecs: JSON text and google.protobuf.Value to Python values, with the nesting bound."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import struct_pb2

from synapse_nb.serve.codec import MAX_DEPTH, from_value, loads, to_value
from synapse_nb.serve.errors import Malformed


@pytest.mark.parametrize(
    "value",
    [None, True, 3, -7, 1.5, "text", [], {}, {"a": [1, {"b": None}], "c": "d"}, [2**53, 0.1], {"e": {}, "l": [[]]}],
)
def test_values_round_trip_through_protobuf(value: Any) -> None:
    decoded = from_value(struct_pb2.Value.FromString(to_value(value, struct_pb2.Value()).SerializeToString()))
    assert decoded == value
    assert type(decoded) is type(value)


def test_integral_doubles_become_ints_only_where_exact() -> None:
    assert from_value(to_value(2.0, struct_pb2.Value())) == 2
    assert isinstance(from_value(to_value(2.0**60, struct_pb2.Value())), float)
    assert from_value(struct_pb2.Value()) is None  # an unset Value is null


def test_nesting_is_bounded() -> None:
    deep: Any = 0
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert loads(json.dumps(deep)) == deep
    with pytest.raises(Malformed, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads(json.dumps([deep]))
    value = struct_pb2.Value()
    to_value([deep], value)
    with pytest.raises(Malformed, match="nested deeper"):
        from_value(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": 1', r"is not valid JSON: Expecting ',' delimiter \(line 1, column 8\)"),
        (b"\xc3\x28", r"not UTF-8 \(byte 0xc3\)"),
        (b"[" * 5000, "nested deeper"),
        (b"NaN-ish", "is not valid JSON"),
        (b"1" * 5000, "an integer of 5000 digits is over the limit"),
        (b"[1e999]", "a number too large"),
    ],
)
def test_loads_names_what_is_wrong(text: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        loads(text)
