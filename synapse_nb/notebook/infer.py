"""JSON Schema inference from example payloads, in the spirit of MLflow's signature inference.

Each example contributes its shape: objects give ``properties`` (a property is ``required`` when every example
has it), arrays give ``items`` (merged over every element), scalars give their JSON type. Several examples
merge: types are unioned (``["integer", "null"]``), ``integer`` and ``number`` merge to ``number``. The result is
a draft-07 schema that accepts every example, and nothing of another shape.
"""

from __future__ import annotations

from typing import Any

from ..jsonsafe import json_type_of

__all__ = ["infer_schema"]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def _infer(values: list[Any]) -> dict[str, Any]:
    types = {json_type_of(v) for v in values}
    if {"integer", "number"} <= types:
        types.discard("integer")
    schema: dict[str, Any] = {"type": sorted(types)[0] if len(types) == 1 else sorted(types)}
    objects = [v for v in values if isinstance(v, dict)]
    if objects:
        keys = sorted({k for o in objects for k in o})
        schema["properties"] = {k: _infer([o[k] for o in objects if k in o]) for k in keys}
        required = [k for k in keys if all(k in o for o in objects)]
        if required:
            schema["required"] = required
    items = [item for v in values if isinstance(v, list) for item in v]
    if items:
        schema["items"] = _infer(items)
    return schema


def infer_schema(examples: list[Any], *, title: str | None = None) -> dict[str, Any]:
    """A draft-07 schema that every example validates against; ``TypeError`` names a non-JSON value."""
    if not examples:
        raise ValueError("infer_schema needs at least one example")
    schema = {"$schema": DRAFT_07, **_infer(list(examples))}
    if title:
        schema["title"] = title
    return schema
