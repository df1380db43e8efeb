"""The pure parts of schema comparison: JSON Schema keyword values as sets, bounds and counts, compared.

Each function here looks at one keyword (or one group, such as ``minimum``/``exclusiveMinimum``) of two schemas
and says how the set of accepted values moved: ``widen``, ``narrow``, ``change`` (both ways) or None (same).
Because a schema's keywords are a conjunction, a schema whose every keyword widened accepts everything it did
before; :mod:`.schemadiff` walks the schema and relies on that.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

__all__ = [
    "ANNOTATIONS",
    "COUNT_KEYWORDS",
    "STRUCTURAL",
    "SUBSCHEMAS",
    "UNSUPPORTED",
    "Bound",
    "allowed_values",
    "canonical",
    "compare_multiple_of",
    "kebab",
    "lower_bound",
    "same",
    "show",
    "type_set",
    "types_overlap",
    "types_subset",
    "upper_bound",
]

Move = Literal["widen", "narrow", "change"]

# Keywords that change no validation outcome: a change to them needs a patch release at most.
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
        "contentSchema",
    }
)
# Keywords that only give structure (identifiers, containers of definitions): compared where they are used.
STRUCTURAL = frozenset(
    {"$id", "$schema", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$vocabulary"}
)
# Keywords whose effect depends on the evaluation of others: any change to them cannot be proven compatible.
UNSUPPORTED = frozenset({"$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems"})
# Keywords whose values are subschemas (or maps/lists of them) that the walker descends into.
SUBSCHEMAS = frozenset(
    {
        "properties",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "dependencies",
        "dependentSchemas",
        "items",
        "prefixItems",
        "additionalItems",
        "contains",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "$ref",
        "$defs",
        "definitions",
    }
)
# (keyword, is a lower bound): sizes of strings, arrays, objects and matches of `contains`.
COUNT_KEYWORDS: tuple[tuple[str, bool], ...] = (
    ("minLength", True),
    ("maxLength", False),
    ("minItems", True),
    ("maxItems", False),
    ("minProperties", True),
    ("maxProperties", False),
    ("minContains", True),
    ("maxContains", False),
)
JSON_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")


def kebab(keyword: str) -> str:
    """``maxLength`` -> ``max-length`` (for rule ids)."""
    out = "".join("-" + c.lower() if c.isupper() else c for c in keyword.lstrip("$"))
    return out.lstrip("-")


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is not ``1`` (as JSON Schema's ``const`` and ``enum`` judge)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """A string equal for JSON-equal values (``1`` and ``1.0``), different for ``true`` and ``1``."""
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def show(value: Any, limit: int = 60) -> str:
    """A value as compact JSON for messages, cut at ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_set(schema: dict[str, Any]) -> frozenset[str] | None:
    """The ``type`` keyword as a set (None: any type)."""
    value = schema.get("type")
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return None


def types_subset(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Every value of a type in ``a`` has a type in ``b`` (``integer`` is a ``number``; None is every type)."""
    if b is None:
        return True
    if a is None:
        return all(t in b or (t == "integer" and "number" in b) for t in JSON_TYPES)
    return all(t in b or (t == "integer" and "number" in b) for t in a)


def types_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Some value has a type in both (None is every type)."""
    if a is None or b is None:
        return True
    wide_a = a | ({"integer"} if "number" in a else set())
    wide_b = b | ({"integer"} if "number" in b else set())
    return bool(wide_a & wide_b)


def json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def allowed_values(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``const`` and ``enum`` as {canonical: value} (both: their intersection); None when neither is there."""
    result: dict[str, Any] | None = None
    if "enum" in schema and isinstance(schema["enum"], list):
        result = {canonical(v): v for v in schema["enum"]}
    if "const" in schema:
        const = {canonical(schema["const"]): schema["const"]}
        result = const if result is None else {k: v for k, v in result.items() if k in const}
    return result


@dataclass(frozen=True)
class Bound:
    """A numeric bound: its value, whether it is exclusive, and the keyword that sets it."""

    value: float | int
    exclusive: bool
    keyword: str

    def tighter_than(self, other: Bound, *, lower: bool) -> bool:
        if self.value != other.value:
            return self.value > other.value if lower else self.value < other.value
        return self.exclusive and not other.exclusive

    def __str__(self) -> str:
        return f"{self.keyword} {show(self.value)}"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _bound(schema: dict[str, Any], draft: int, *, lower: bool) -> Bound | None:
    inclusive, exclusive = ("minimum", "exclusiveMinimum") if lower else ("maximum", "exclusiveMaximum")
    found: list[Bound] = []
    plain = _number(schema.get(inclusive))
    if draft == 4:
        if plain is not None:
            found.append(Bound(plain, schema.get(exclusive) is True, inclusive))
    else:
        if plain is not None:
            found.append(Bound(plain, False, inclusive))
        strict = _number(schema.get(exclusive))
        if strict is not None:
            found.append(Bound(strict, True, exclusive))
    best: Bound | None = None
    for bound in found:
        if best is None or bound.tighter_than(best, lower=lower):
            best = bound
    return best


def lower_bound(schema: dict[str, Any], draft: int) -> Bound | None:
    """The tightest lower bound of ``minimum``/``exclusiveMinimum`` (draft 4's boolean form included)."""
    return _bound(schema, draft, lower=True)


def upper_bound(schema: dict[str, Any], draft: int) -> Bound | None:
    """The tightest upper bound of ``maximum``/``exclusiveMaximum``."""
    return _bound(schema, draft, lower=False)


def _fraction(value: Any) -> Fraction | None:
    number = _number(value)
    if number is None or number <= 0:
        return None
    try:
        return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)
    except (ValueError, OverflowError):
        return None


def compare_multiple_of(old: Any, new: Any) -> Move | None:
    """``multipleOf`` 2 -> 4 narrows (every multiple of 4 is one of 2); 4 -> 2 widens; 2 -> 3 changes."""
    a, b = _fraction(old), _fraction(new)
    if a is None or b is None or a == b:
        return None
    if (b / a).denominator == 1:
        return "narrow"
    if (a / b).denominator == 1:
        return "widen"
    return "change"
