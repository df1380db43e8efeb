"""Payloads on the wire: JSON text and ``google.protobuf.Value`` to Python values and back, bounded.

A payload is what JSON can carry, whichever way it arrives. Over gRPC a ``google.protobuf.Value`` holds
numbers as doubles: an integral number whose magnitude is at most 2**53 comes out as a Python ``int`` (so a
handler sees ``3``, not ``3.0``, as it would from JSON), larger ones as floats; ``payload_json`` carries
exact JSON instead. JSON text is decoded by :func:`synapse_nb.jsonsafe.loads` (bounded depth, numbers, UTF-8),
and anything nested deeper than :data:`MAX_DEPTH` is refused as :class:`~.errors.Malformed` (a ``Value`` meets
protobuf's own recursion limit first: about 50 levels of JSON), so that no request can exhaust the host's
recursion limit in validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import jsonsafe
from ..errors import ValidationError
from .errors import Malformed

if TYPE_CHECKING:
    from google.protobuf import struct_pb2

__all__ = ["MAX_DEPTH", "from_value", "loads", "to_struct", "to_value"]

MAX_DEPTH = jsonsafe.MAX_DEPTH
_EXACT = float(2**53)


def loads(data: bytes | str, *, what: str = "the request body") -> Any:
    """Parse UTF-8 JSON text (bounded: see :mod:`synapse_nb.jsonsafe`); Malformed naming the line and column."""
    try:
        return jsonsafe.loads(data, what=what, max_depth=MAX_DEPTH, direction="input")
    except ValidationError as exc:
        raise Malformed(exc.message) from None


def from_value(value: struct_pb2.Value, depth: int = 0) -> Any:
    """The Python value a ``google.protobuf.Value`` holds (an unset Value is null)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) <= _EXACT else number
    if kind == "bool_value":
        return value.bool_value
    if kind is None or kind == "null_value":
        return None
    if depth >= MAX_DEPTH:
        raise Malformed(f"the payload is nested deeper than {MAX_DEPTH} levels")
    if kind == "struct_value":
        return {key: from_value(item, depth + 1) for key, item in value.struct_value.fields.items()}
    return [from_value(item, depth + 1) for item in value.list_value.values]


def to_value(obj: Any, value: struct_pb2.Value) -> struct_pb2.Value:
    """Fill ``value`` with the JSON value ``obj`` (a validated result: dicts, lists, str, numbers, bools, None)."""
    if obj is None:
        value.null_value = 0
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, (int, float)):
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, dict):
        value.struct_value.SetInParent()  # {} is an empty struct, not an unset (null) Value
        value.struct_value.update(obj)
    elif isinstance(obj, (list, tuple)):
        value.list_value.SetInParent()
        value.list_value.extend(obj)
    else:  # pragma: no cover - results are validated JSON
        raise TypeError(f"not a JSON value: {type(obj).__name__}")
    return value


def to_struct(obj: dict[str, Any], struct: struct_pb2.Struct) -> struct_pb2.Struct:
    """Fill ``struct`` with a JSON object (metadata: strings, numbers, bools, nested objects and lists)."""
    struct.update(obj)
    return struct
