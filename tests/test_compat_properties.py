"""Hypothesis: whenever the differ says a change is minor (or patch), no value proves it wrong.

Random old schemas are mutated with random edits from the rule table; where the differ judges the pair at most
minor for inputs, every value generated from the old input schema (its declared contract: undeclared members of
open objects are not part of it) must validate against the new one; for outputs, every value generated from the
new output schema must validate against the old one.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from synapse_nb.compat.model import max_bump
from synapse_nb.compat.schemadiff import SchemaDocs, diff_schema
from synapse_nb.compat.semantic import declared_contract
from synapse_nb.schemas import SchemaSet

NAMES = ["a", "b", "c", "d"]
PATTERNS = ["^a", "^[a-c]*$", "b$"]

scalars = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={"minLength": st.integers(0, 3), "maxLength": st.integers(3, 8), "pattern": st.sampled_from(PATTERNS)},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-5, 0),
            "maximum": st.integers(1, 9),
            "multipleOf": st.sampled_from([1, 2, 0.5]),
        },
    ),
    st.fixed_dictionaries(
        {"enum": st.lists(st.sampled_from(["x", "y", "z", 1, 2, None]), min_size=1, max_size=3, unique=True)}
    ),
    st.sampled_from([{"type": "boolean"}, {"type": "null"}, {"type": ["string", "null"]}, {}]),
)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(st.sampled_from(NAMES), children, max_size=3))
        schema: dict[str, Any] = {"type": "object", "properties": props}
        required = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        if required:
            schema["required"] = required
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    return build()


schemas = st.recursive(
    scalars,
    lambda children: st.one_of(
        _objects(children),
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": children},
            optional={"maxItems": st.integers(1, 4), "uniqueItems": st.booleans()},
        ),
        st.fixed_dictionaries({"anyOf": st.lists(children, min_size=1, max_size=3)}),
    ),
    max_leaves=6,
)


def _nodes(schema: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every subschema (dicts) inside ``schema``."""
    found = [path]
    if isinstance(schema, dict):
        for name, child in (schema.get("properties") or {}).items():
            found += _nodes(child, (*path, "properties", name))
        if isinstance(schema.get("items"), dict):
            found += _nodes(schema["items"], (*path, "items"))
        for i, child in enumerate(schema.get("anyOf") or []):
            found += _nodes(child, (*path, "anyOf", i))
    return found


def _edit(node: dict[str, Any], draw: st.DrawFn) -> None:
    """One random edit of the rule table, in place."""
    edits = ["type", "enum", "bound", "length", "pattern", "annotation", "default", "anyof"]
    if node.get("type") == "object":
        edits += ["add-property", "remove-property", "required", "additional"]
    edit = draw(st.sampled_from(edits))
    if edit == "type":
        node["type"] = draw(
            st.sampled_from(["string", "integer", "number", "null", ["integer", "string"], ["number", "null"]])
        )
    elif edit == "enum":
        values = list(node.get("enum", ["x", 1]))
        if draw(st.booleans()) and len(values) > 1:
            values.pop(draw(st.integers(0, len(values) - 1)))
        else:
            values.append(draw(st.sampled_from(["w", 3, True, "x2"])))
        node["enum"] = list({json.dumps(v): v for v in values}.values())
    elif edit == "bound":
        key = draw(st.sampled_from(["minimum", "maximum", "exclusiveMaximum", "multipleOf"]))
        if key in node and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(st.sampled_from([0.5, 1, 2, 3])) if key == "multipleOf" else draw(st.integers(-6, 10))
    elif edit == "length":
        key = draw(st.sampled_from(["minLength", "maxLength", "minItems", "maxItems", "uniqueItems"]))
        if key in node and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(st.booleans()) if key == "uniqueItems" else draw(st.integers(0, 6))
    elif edit == "pattern":
        if "pattern" in node and draw(st.booleans()):
            del node["pattern"]
        else:
            node["pattern"] = draw(st.sampled_from(PATTERNS))
    elif edit == "annotation":
        node["description"] = draw(st.text(max_size=5))
    elif edit == "default":
        node["default"] = draw(st.sampled_from(["x", 1, None]))
    elif edit == "anyof":
        branches = list(node.get("anyOf", []))
        if branches and draw(st.booleans()):
            branches.pop(draw(st.integers(0, len(branches) - 1)))
            if branches:
                node["anyOf"] = branches
            else:
                del node["anyOf"]
        else:
            node["anyOf"] = [*branches, draw(scalars)]
    elif edit == "add-property":
        name = draw(st.sampled_from(NAMES))
        node.setdefault("properties", {})[name] = draw(scalars)
        if draw(st.booleans()):
            node["required"] = sorted({*node.get("required", []), name})
    elif edit == "remove-property" and node.get("properties"):
        name = draw(st.sampled_from(sorted(node["properties"])))
        del node["properties"][name]
    elif edit == "required" and node.get("properties"):
        name = draw(st.sampled_from(sorted(node["properties"])))
        required = set(node.get("required", []))
        required ^= {name}
        node["required"] = sorted(required)
    elif edit == "additional":
        node["additionalProperties"] = not node.get("additionalProperties", True)


@st.composite
def schema_pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    old = draw(schemas)
    new = copy.deepcopy(old)
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(_nodes(new)))
        node = new
        for key in path:
            node = node[key]
        _edit(node, draw)
    return old, new


def _docs(schema: Any) -> SchemaDocs:
    return SchemaDocs({"s.json": schema}, {"s.json": json.dumps(schema)})


def _claims_compatible(old: Any, new: Any, direction: str) -> bool:
    found = diff_schema(_docs(old), _docs(new), "s.json", direction)  # type: ignore[arg-type]
    return max_bump(c.bump for c in found) in ("none", "patch", "minor")


def _check(source: Any, target: Any, data: st.DataObject) -> None:
    accepts_source = SchemaSet(folder=None, schemas={"s.json": source}).validator("s.json")  # type: ignore[arg-type]
    accepts_target = SchemaSet(folder=None, schemas={"s.json": target}).validator("s.json")  # type: ignore[arg-type]
    strategy = from_schema(declared_contract(source))
    if strategy.is_empty:
        return  # the schema accepts nothing (e.g. an object that must equal a string)
    values = data.draw(st.lists(strategy, max_size=8))
    for value in values:
        if accepts_source.is_valid(value):
            assert accepts_target.is_valid(value), (value, source, target)


SETTINGS = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@SETTINGS
@given(schema_pairs(), st.data())
def test_values_of_the_old_input_schema_validate_against_a_new_one_the_differ_calls_minor(
    pair: tuple[Any, Any], data: st.DataObject
) -> None:
    old, new = pair
    if _claims_compatible(old, new, "input"):
        _check(old, new, data)


@SETTINGS
@given(schema_pairs(), st.data())
def test_values_of_a_new_output_schema_the_differ_calls_minor_validate_against_the_old_one(
    pair: tuple[Any, Any], data: st.DataObject
) -> None:
    old, new = pair
    if _claims_compatible(old, new, "output"):
        _check(new, old, data)
