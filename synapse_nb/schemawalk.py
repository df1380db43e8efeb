"""Where a JSON Schema document holds subschemas: walked without recursion, by keyword, never by key name.

A ``$ref`` or a ``pattern`` means something only at a position where a schema can be: under ``properties`` the
keys are property *names* (a property may well be called ``const`` or ``enum``), and inside ``const``, ``enum``,
``default`` or ``examples`` everything is a value. :func:`walk` visits exactly the schema positions of every
draft this project accepts (4, 6, 7, 2019-09, 2020-12), with the base URI each one resolves ``$ref`` against.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

__all__ = ["Path", "pointer", "subschemas", "walk"]

Path = tuple[str | int, ...]

# Keywords whose value is one subschema ("items" is also an array of them before 2020-12).
_ONE = frozenset(
    {"additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items", "not",
     "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties"}
)  # fmt: skip
# Keywords whose value maps names (or patterns) to subschemas ("dependencies" values may also be name arrays).
_MAP = frozenset({"$defs", "definitions", "dependencies", "dependentSchemas", "patternProperties", "properties"})
# Keywords whose value is an array of subschemas.
_ARRAY = frozenset({"allOf", "anyOf", "items", "oneOf", "prefixItems"})


def subschemas(node: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    """Each (relative path, subschema) directly inside the schema object ``node``."""
    for key, value in node.items():
        if key in _ONE and isinstance(value, (dict, bool)):
            yield (key,), value
        elif key in _MAP and isinstance(value, dict):
            for name, sub in value.items():
                if isinstance(sub, (dict, bool)):
                    yield (key, name), sub
        elif key in _ARRAY and isinstance(value, list):
            for i, sub in enumerate(value):
                if isinstance(sub, (dict, bool)):
                    yield (key, i), sub


def _rebase(base: str, node: dict[str, Any]) -> str:
    ident = node.get("$id")
    if not isinstance(ident, str):
        return base
    try:
        return urljoin(base, ident)
    except ValueError:  # e.g. "http://[": the metaschema check reports it
        return base


def walk(
    root: Any, base: str, path: Path = (), seen: set[int] | None = None
) -> Iterator[tuple[dict[str, Any], Path, str]]:
    """Every schema object in ``root`` (itself included) with its path and the base URI in force there.

    With ``seen`` (ids of schema objects), objects already in it are skipped with everything below them, and
    visited ones are added: walking from many ``$ref`` targets then costs each object once.
    """
    stack: list[tuple[Any, Path, str]] = [(root, path, base)]
    while stack:
        node, where, uri = stack.pop()
        if not isinstance(node, dict):
            continue
        if seen is not None:
            if id(node) in seen:
                continue
            seen.add(id(node))
        uri = _rebase(uri, node)
        yield node, where, uri
        stack.extend((sub, (*where, *rel), uri) for rel, sub in reversed(list(subschemas(node))))


def pointer(path: Path) -> str:
    """The JSON pointer (RFC 6901) of ``path``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
