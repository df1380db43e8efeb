"""A compiled ``is_valid`` for the common subset of JSON Schema, for the per-call hot path.

Every call validates its input and its output on the host. ``jsonschema`` takes ~20 µs for even a small
object schema, a large share of a warm call's budget, so schemas written only with the keywords below are
compiled into closures that answer "valid?" in about a microsecond. Anything else (``$ref``, ``format``,
``patternProperties``, ``oneOf``...) is not compiled and ``jsonschema`` decides, as it also does whenever the
compiled check says "invalid" (to produce the located error). The bounded ``jsonschema`` classes of
:mod:`synapse_nb.boundedschema` remain the source of truth, and the compiled checks give the same answers: the same
linear-time regexes (:mod:`synapse_nb.linregex`) and the same hashed ``uniqueItems``
(:func:`synapse_nb.jsonsafe.all_unique`). ``tests/test_fastschema.py`` checks that on generated schemas. Containers
tick the time budget (:mod:`synapse_nb.budget`) by their length, so a check with a deadline stops in time.

Supported: boolean schemas; ``type`` (one or a list); ``properties``, ``required``, ``additionalProperties``
(boolean or schema); ``items`` (one schema; not tuple form / ``prefixItems``); ``minItems``/``maxItems``;
``minLength``/``maxLength``; ``pattern``; ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``
(numeric form, draft 6 and later); ``enum``/``const`` of strings, null and booleans; annotations
(``title``, ``description``, ``default``, ``examples``, ``$comment``, ``$schema``, ``$id`` at the root,
``deprecated``, ``readOnly``, ``writeOnly``).
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

from .budget import tick
from .jsonsafe import all_unique
from .linregex import UnsupportedPattern, compile_pattern, refusal

__all__ = ["compile_is_valid", "is_plainly_valid_schema"]

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly"}
)
_SUPPORTED = _ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
    "const",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "propertyNames",
}


class _Unsupported(Exception):
    """The schema uses something this compiler does not handle; jsonschema decides instead."""


def _is_number(x: Any) -> bool:
    return type(x) in (int, float)


def _type_check(name: str) -> Check:
    if name == "object":
        return lambda x: type(x) is dict
    if name == "array":
        return lambda x: type(x) is list
    if name == "string":
        return lambda x: type(x) is str
    if name == "boolean":
        return lambda x: type(x) is bool
    if name == "null":
        return lambda x: x is None
    if name == "number":
        return _is_number
    if name == "integer":  # from draft 6 on, 1.0 is an integer
        return lambda x: type(x) is int or (type(x) is float and x.is_integer())
    raise _Unsupported(f"type {name!r}")


def _bound_check(key: str, bound: float) -> Check:
    if key == "minimum":
        return lambda x: not _is_number(x) or x >= bound
    if key == "maximum":
        return lambda x: not _is_number(x) or x <= bound
    if key == "exclusiveMinimum":
        return lambda x: not _is_number(x) or x > bound
    return lambda x: not _is_number(x) or x < bound


# Size keywords and the JSON type each applies to (len() counts code points, items and properties alike).
_SIZE_KEYWORDS: dict[str, type[Sized]] = {
    "minLength": str,
    "maxLength": str,
    "minItems": list,
    "maxItems": list,
    "minProperties": dict,
    "maxProperties": dict,
}


def _size_check(key: str, kind: type[Sized], size: int) -> Check:
    if key.startswith("min"):
        return lambda x: type(x) is not kind or len(x) >= size
    return lambda x: type(x) is not kind or len(x) <= size


def _each(check: Check, items: list[Any] | dict[str, Any]) -> bool:
    """``check`` holds for every item (or key), with the items counted against the time budget."""
    tick(len(items))
    for item in items:  # noqa: SIM110 - a plain loop is faster than all() over a generator here
        if not check(item):
            return False
    return True


def _literal(value: Any) -> tuple[type, Any]:
    if value is None or type(value) in (str, bool):
        return (type(value), value)
    raise _Unsupported("enum/const of numbers or containers")  # jsonschema's equality rules apply there


def _compile(schema: Any, draft: int, root: bool) -> Check:
    if schema is True:
        return lambda x: True
    if schema is False:
        return lambda x: False
    if type(schema) is not dict:
        raise _Unsupported("schema is not an object")
    # "x-..." keywords are annotations of our own (e.g. the manifest schema's error texts); jsonschema ignores them.
    keys = {k for k in schema if not k.startswith("x-")} - ({"$schema", "$id"} if root else set())
    if not keys <= _SUPPORTED:
        raise _Unsupported(", ".join(sorted(keys - _SUPPORTED)))
    checks: list[Check] = []

    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        tests = tuple(_type_check(n) for n in names)
        if len(tests) == 1:
            checks.append(tests[0])
        else:

            def any_type(x: Any) -> bool:
                return any(f(x) for f in tests)

            checks.append(any_type)

    if "enum" in schema:
        allowed = {_literal(v) for v in schema["enum"]}
        checks.append(lambda x: (type(x), x) in allowed if x is None or type(x) in (str, bool) else False)
    if "const" in schema:
        expected = _literal(schema["const"])
        checks.append(lambda x: (x is None or type(x) in (str, bool)) and (type(x), x) == expected)

    for key, kind in _SIZE_KEYWORDS.items():
        if key in schema:
            checks.append(_size_check(key, kind, schema[key]))
    if "pattern" in schema:
        search = compile_pattern(schema["pattern"]).search
        checks.append(lambda x: type(x) is not str or search(x))

    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            bound = schema[key]
            if not _is_number(bound):
                raise _Unsupported(f"non-numeric {key}")
            checks.append(_bound_check(key, bound))

    if schema.get("uniqueItems") is True:
        checks.append(lambda x: type(x) is not list or all_unique(x))
    if "propertyNames" in schema:
        name_check = _compile(schema["propertyNames"], draft, False)
        checks.append(lambda x: type(x) is not dict or _each(name_check, x))
    if "items" in schema:
        if isinstance(schema["items"], list):
            raise _Unsupported("tuple-form items")
        item = _compile(schema["items"], draft, False)
        checks.append(lambda x: type(x) is not list or _each(item, x))

    props = {k: _compile(v, draft, False) for k, v in schema.get("properties", {}).items()}
    required = tuple(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    extra_check = None if extra is True else _compile(extra, draft, False)
    if props or required or extra_check is not None:

        def check_object(x: Any) -> bool:
            if type(x) is not dict:
                return True
            tick(len(x))
            for name in required:
                if name not in x:
                    return False
            for name, value in x.items():
                test = props.get(name)
                if test is not None:
                    if not test(value):
                        return False
                elif extra_check is not None and not extra_check(value):
                    return False
            return True

        checks.append(check_object)

    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)

    def check_all(x: Any) -> bool:
        for f in checks:  # noqa: SIM110 - a plain loop is faster than all() over a generator here
            if not f(x):
                return False
        return True

    return check_all


def compile_is_valid(schema: Any, draft: int) -> Check | None:
    """A fast ``is_valid`` for ``schema`` (``draft``: 6, 7, 2019 or 2020), or None when not supported.

    Draft 4 is left to jsonschema: its vocabulary differs (no ``const``, boolean exclusive bounds, no boolean
    schemas, integers exclude 1.0) and it is rare in new plugins.
    """
    if draft < 6:
        return None
    try:
        return _compile(schema, draft, True)
    except (_Unsupported, UnsupportedPattern, TypeError, ValueError, AttributeError, RecursionError):
        return None  # anything unusual: jsonschema decides


_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_STRINGS = ("title", "description", "$comment", "format")
_BOOLS = ("uniqueItems", "deprecated", "readOnly", "writeOnly")


def _well_formed(schema: Any, root: bool) -> bool:
    if type(schema) is bool:
        return True
    if type(schema) is not dict:
        return False
    for key, value in schema.items():
        if key.startswith("x-") or key in ("default", "const"):
            continue
        if key in ("$schema", "$id"):
            if not root or type(value) is not str:
                return False
        elif key == "type":
            names = value if type(value) is list else [value]
            if not names or any(type(n) is not str or n not in _TYPES for n in names) or len(set(names)) < len(names):
                return False
        elif key in ("properties",):
            if type(value) is not dict or not all(_well_formed(v, False) for v in value.values()):
                return False
        elif key in ("additionalProperties", "items", "propertyNames"):
            if not _well_formed(value, False):
                return False
        elif key == "required":
            if type(value) is not list or any(type(v) is not str for v in value) or len(set(value)) < len(value):
                return False
        elif key in ("enum", "examples"):
            if type(value) is not list:
                return False
        elif key in _COUNTS:
            if type(value) is not int or value < 0:
                return False
        elif key in _NUMBERS:
            if type(value) not in (int, float):
                return False
        elif key == "multipleOf":
            if type(value) not in (int, float) or value <= 0:
                return False
        elif key == "pattern":
            if type(value) is not str or refusal(value) is not None:
                return False
        elif key in _STRINGS:
            if type(value) is not str:
                return False
        elif key in _BOOLS:
            if type(value) is not bool:
                return False
        else:
            return False
    return True


def is_plainly_valid_schema(schema: Any, draft: int) -> bool:
    """True when ``schema`` uses only well-formed keywords of the common subset (draft 6 and later).

    True means the draft's metaschema accepts it (checked against jsonschema in the tests); False only means
    "not sure": ask jsonschema. This keeps ``import jsonschema`` (which can take a second when optional format
    libraries are installed) off the path of every well-formed plugin.
    """
    try:
        return draft >= 6 and _well_formed(schema, True)
    except RecursionError:
        return False
