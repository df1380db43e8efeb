"""Decoding untrusted JSON with bounds, and JSON Schema's equality of decoded values.

:func:`loads` is ``json.loads`` for text that comes from outside the host's trust (``--input``, worker replies,
files from plugin folders): every way the standard decoder fails or misbehaves becomes one
:class:`~synapse_nb.errors.ValidationError` (exit 3) naming ``what`` and the line and column:

* nesting deeper than ``max_depth`` (the C decoder would recurse until ``RecursionError``, and every later
  recursive step, validation included, would too): checked before decoding, without recursion;
* integers longer than Python's int/str conversion limit (4300 digits by default: ``sys.set_int_max_str_digits``,
  which also keeps the conversion from taking quadratic time), and exponents too
  large for a float (``1e400`` would silently become ``inf``, which is not JSON);
* ``NaN``, ``Infinity`` and ``-Infinity``, which the standard decoder accepts but JSON does not have;
* bytes that are not UTF-8, and strings holding a lone surrogate (``"\\ud800"``), which no UTF-8 encoder accepts.

The checks cost almost nothing on ordinary text: a count of brackets, and a search for long digit runs and
surrogate escapes, all in C; the slower passes run only when those find something.

:func:`all_unique` is ``uniqueItems`` in O(n): JSON Schema equality (``1 == 1.0``, ``1 != true``, key order
irrelevant) through hashable keys.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from . import budget
from .errors import Problem, ValidationError

__all__ = ["MAX_DEPTH", "all_unique", "equality_key", "loads"]

#: Deepest nesting of arrays and objects accepted (serde_json's default).
MAX_DEPTH = 128

_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRINGS = re.compile(_STRING, re.DOTALL)
_BRACKET_TOKENS = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
_NUMBER_TOKENS = re.compile(_STRING + r"|-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|-?Infinity", re.DOTALL)
_NOT_SKELETON = bytes(c for c in range(256) if c not in b'[]{}"')
# Exponents that could overflow a float: only then are the (slower) number hooks installed. (A literal whose
# mantissa alone overflows, 309 digits or more, decodes to inf, which every JSON encoder here refuses.)
_BIG_NUMBER = r"[eE][+-]?0*\d{3}"
_BIG_NUMBER_SHORT = re.compile(_BIG_NUMBER)  # sre is quicker to start, RE2 quicker on long text
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile(r"[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")


class _BadNumber(ValueError):
    def __init__(self, token: str, why: str) -> None:
        super().__init__(why)
        self.token = token


def _refuse_constant(name: str) -> Any:
    raise _BadNumber(name, f"{name} is not a JSON number")


def _checked_int(token: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(token.lstrip("-")) > limit:
        raise _BadNumber(token, f"an integer of {len(token.lstrip('-'))} digits is over the limit of {limit}")
    return int(token)


def _checked_float(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise _BadNumber(token, "a number too large to represent (over about 1.8e308)")
    return value


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _error(what: str, message: str, text: str, offset: int, direction: str | None) -> ValidationError:
    line, col = _position(text, offset)
    error = ValidationError(
        f"{what} is not valid JSON: {message} (line {line}, column {col})", pointer="", direction=direction
    )
    error.problems = [Problem(what, f"not valid JSON: {message}", line, col)]  # located, for file-based callers
    return error


def _depth_bound(text: str, max_depth: int) -> int:
    """An upper bound of the nesting depth of ``text`` (exact when it is valid JSON), in C-speed passes.

    Escaped backslashes and quotes are dropped, then everything but brackets and quotes; the quotes alternate
    open/close, so dropping adjacent pairs and then every other segment leaves the brackets outside strings.
    Each pass of removing ``[]`` strips one level.
    """
    data = text.encode("utf-8", "surrogatepass")
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(None, _NOT_SKELETON).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    skeleton = skeleton.replace(b"{", b"[").replace(b"}", b"]")
    passes = 0
    while skeleton and passes <= max_depth:
        reduced = skeleton.replace(b"[]", b"")
        if len(reduced) == len(skeleton):
            break  # unbalanced: what is left cannot nest further than its openers
        skeleton, passes = reduced, passes + 1
    return passes + skeleton.count(b"[")


def _too_deep_at(text: str, max_depth: int) -> int:
    depth = 0
    for token in _BRACKET_TOKENS.finditer(text):
        c = token.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                return token.start()
        elif c in "]}":
            depth -= 1
    return 0


def _number_at(text: str, token: str) -> int:
    for found in _NUMBER_TOKENS.finditer(text):
        if found.group() == token:
            return found.start()
    return 0


def _long_integer(text: str) -> str:
    limit = sys.get_int_max_str_digits()
    for found in _NUMBER_TOKENS.finditer(text):
        token = found.group()
        if not token.startswith('"') and len(token.lstrip("-")) > limit:
            return token
    return ""


def _lone_surrogate_at(text: str) -> int | None:
    for found in _STRINGS.finditer(text):
        if "\\u" in found.group() and _LONE_SURROGATE.search(json.loads(found.group())):
            return found.start()
    return None


_PLAIN = json.JSONDecoder(parse_constant=_refuse_constant)
_CHECKED = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_checked_int, parse_float=_checked_float)


def _may_overflow(text: str) -> bool:
    if len(text) < 2048:
        return _BIG_NUMBER_SHORT.search(text) is not None
    from .linregex import compile_pattern

    return compile_pattern(_BIG_NUMBER).search(text)


def loads(
    data: str | bytes,
    *,
    what: str,
    max_depth: int = MAX_DEPTH,
    direction: str | None = None,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """Decode untrusted JSON; any problem is a :class:`ValidationError` naming ``what`` and line:column.

    ``what`` names the source in messages ("input from --input", "schemas/x.json"); ``direction`` is set on the
    error (``"input"``/``"output"``). ``object_pairs_hook`` is passed on (e.g. to refuse duplicate keys; a
    ``ValueError`` it raises is reported like a syntax error).
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = bytes(data)[: exc.start].decode("utf-8", "replace")
            raise _error(what, f"not UTF-8 (byte 0x{data[exc.start]:02x})", prefix, len(prefix), direction) from None
    else:
        text = data
    if (len(text) > 65536 or text.count("[") + text.count("{") > max_depth) and _depth_bound(
        text, max_depth
    ) > max_depth:
        where = _too_deep_at(text, max_depth)
        raise _error(what, f"nested deeper than {max_depth} levels", text, where, direction)
    decoder = _CHECKED if _may_overflow(text) else _PLAIN
    if object_pairs_hook is not None:
        decoder = json.JSONDecoder(
            object_pairs_hook=object_pairs_hook,
            parse_constant=decoder.parse_constant,
            parse_int=decoder.parse_int,
            parse_float=decoder.parse_float,
        )
    try:
        value = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise _error(what, exc.msg, text, exc.pos, direction) from None
    except _BadNumber as exc:
        raise _error(what, str(exc), text, _number_at(text, exc.token), direction) from None
    except ValueError as exc:  # Python's own int/str digit limit, or the object_pairs_hook
        if "integer string conversion" in str(exc):
            token = _long_integer(text)
            why = f"an integer of {len(token.lstrip('-'))} digits is over the limit of {sys.get_int_max_str_digits()}"
            raise _error(what, why, text, _number_at(text, token), direction) from None
        raise _error(what, str(exc), text, 0, direction) from None
    except RecursionError:  # the caller's own stack was already deep
        raise _error(what, "nested too deeply for this call stack", text, 0, direction) from None
    if "\\" in text and _SURROGATE_ESCAPE.search(text):
        lone = _lone_surrogate_at(text)
        if lone is not None:
            raise _error(what, "a string holds a lone surrogate (not Unicode text)", text, lone, direction)
    return value


_BOOL = object()  # tags, so that true and 1 (equal in Python) get different keys
_LIST = object()
_DICT = object()


def equality_key(value: Any) -> Any:
    """A hashable key such that two JSON values have equal keys exactly when JSON Schema calls them equal.

    Numbers compare by value (``1`` and ``1.0`` are equal), booleans are not numbers, arrays compare in order,
    objects regardless of key order. Raises ``TypeError`` for something that is not a decoded JSON value.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or value is None:
        return value
    if kind is bool:
        return (_BOOL, value)
    if kind is list:
        if len(value) > 64:
            budget.tick(len(value))
        return (_LIST, tuple([equality_key(v) for v in value]))
    if kind is dict:
        if len(value) > 64:
            budget.tick(len(value))
        return (_DICT, frozenset([(k, equality_key(v)) for k, v in value.items()]))
    raise TypeError(f"not a JSON value: {kind.__name__}")


_SCALARS = frozenset({str, int, float, type(None)})


def all_unique(items: list[Any]) -> bool:
    """True when no two items are equal under JSON Schema equality (O(n) expected)."""
    budget.tick(len(items))
    if _SCALARS.issuperset(map(type, items)):  # no booleans, no containers: Python's equality is JSON Schema's
        return len(set(items)) == len(items)
    seen: set[Any] = set()
    add = seen.add
    for count, item in enumerate(items, 1):
        add(equality_key(item))
        if len(seen) < count:
            return False
    return True
