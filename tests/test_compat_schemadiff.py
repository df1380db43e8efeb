"""The direction-aware schema differ, row by row of the rule table, in both directions and in every context."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from synapse_nb.compat.locate import JsonLocator
from synapse_nb.compat.model import max_bump
from synapse_nb.compat.schemadiff import SchemaDocs, diff_schema

ROOT = "input_schema.json"
S = dict[str, Any]


def obj(props: S, required: tuple[str, ...] = (), **extra: Any) -> S:
    return {"type": "object", "properties": props, "required": list(required), **extra}


STR = {"type": "string"}
INT = {"type": "integer"}

# (row, old, new, input bump, output bump, rule suffix)
TABLE: list[tuple[str, S, S, str, str, str]] = [
    ("add optional property", obj({"a": STR}), obj({"a": STR, "b": INT}), "minor", "minor", "property-added"),
    (
        "add required property",
        obj({"a": STR}),
        obj({"a": STR, "b": INT}, ("b",)),
        "major",
        "minor",
        "required-property-added",
    ),
    (
        "remove property from a closed object",
        obj({"a": STR, "b": INT}, additionalProperties=False),
        obj({"a": STR}, additionalProperties=False),
        "major",
        "major",
        "property-removed",
    ),
    (
        "remove property from an open object",
        obj({"a": STR, "b": INT}),
        obj({"a": STR}),
        "minor",
        "major",
        "property-removed",
    ),
    ("optional -> required", obj({"a": STR}), obj({"a": STR}, ("a",)), "major", "minor", "property-became-required"),
    ("required -> optional", obj({"a": STR}, ("a",)), obj({"a": STR}), "minor", "major", "property-became-optional"),
    ("enum value added", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, "minor", "major", "enum-value-added"),
    ("enum value removed", {"enum": ["a", "b"]}, {"enum": ["a"]}, "major", "minor", "enum-value-removed"),
    ("enum introduced", STR, {"type": "string", "enum": ["a"]}, "major", "minor", "enum-introduced"),
    ("const introduced", STR, {"type": "string", "const": "a"}, "major", "minor", "enum-introduced"),
    ("type widened integer -> number", INT, {"type": "number"}, "minor", "major", "type-widened"),
    ("type widened with null", STR, {"type": ["string", "null"]}, "minor", "major", "type-widened"),
    ("type narrowed number -> integer", {"type": "number"}, INT, "major", "minor", "type-narrowed"),
    ("unrelated type change", STR, INT, "major", "major", "type-changed"),
    (
        "maxLength tightened",
        {"type": "string", "maxLength": 10},
        {"type": "string", "maxLength": 5},
        "major",
        "minor",
        "max-length-decreased",
    ),
    (
        "maxLength relaxed",
        {"type": "string", "maxLength": 5},
        {"type": "string", "maxLength": 10},
        "minor",
        "major",
        "max-length-increased",
    ),
    ("minLength set", STR, {"type": "string", "minLength": 2}, "major", "minor", "min-length-set"),
    (
        "maximum tightened",
        {"type": "number", "maximum": 10},
        {"type": "number", "maximum": 5},
        "major",
        "minor",
        "maximum-decreased",
    ),
    (
        "minimum relaxed",
        {"type": "number", "minimum": 5},
        {"type": "number", "minimum": 0},
        "minor",
        "major",
        "minimum-decreased",
    ),
    (
        "maximum made exclusive",
        {"type": "number", "maximum": 5},
        {"type": "number", "exclusiveMaximum": 5},
        "major",
        "minor",
        "maximum-decreased",
    ),
    ("minimum removed", {"type": "number", "minimum": 5}, {"type": "number"}, "minor", "major", "minimum-removed"),
    (
        "multipleOf tightened",
        {"type": "number", "multipleOf": 2},
        {"type": "number", "multipleOf": 4},
        "major",
        "minor",
        "multiple-of-changed",
    ),
    (
        "multipleOf relaxed",
        {"type": "number", "multipleOf": 0.5},
        {"type": "number", "multipleOf": 0.1},
        "minor",
        "major",
        "multiple-of-changed",
    ),
    ("pattern set", STR, {"type": "string", "pattern": "^a"}, "major", "minor", "pattern-set"),
    ("pattern removed", {"type": "string", "pattern": "^a"}, STR, "minor", "major", "pattern-removed"),
    (
        "items count tightened",
        {"type": "array", "maxItems": 5},
        {"type": "array", "maxItems": 3},
        "major",
        "minor",
        "max-items-decreased",
    ),
    ("items count relaxed", {"type": "array", "minItems": 2}, {"type": "array"}, "minor", "major", "min-items-removed"),
    (
        "uniqueItems set",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        "major",
        "minor",
        "unique-items-set",
    ),
    (
        "additionalProperties true -> false",
        obj({"a": STR}),
        obj({"a": STR}, additionalProperties=False),
        "major",
        "minor",
        "additional-properties-forbidden",
    ),
    (
        "additionalProperties false -> true",
        obj({"a": STR}, additionalProperties=False),
        obj({"a": STR}),
        "minor",
        "major",
        "additional-properties-allowed",
    ),
    ("anyOf branch added", {"anyOf": [STR]}, {"anyOf": [STR, INT]}, "minor", "major", "any-of-branch-added"),
    ("anyOf branch removed", {"anyOf": [STR, INT]}, {"anyOf": [STR]}, "major", "minor", "any-of-branch-removed"),
    ("oneOf disjoint branch added", {"oneOf": [STR]}, {"oneOf": [STR, INT]}, "minor", "major", "one-of-branch-added"),
    ("a type becomes anyOf of it and more", STR, {"anyOf": [STR, INT]}, "minor", "major", "any-of-branch-added"),
    (
        "default changed",
        {"type": "string", "default": "en"},
        {"type": "string", "default": "fr"},
        "major",
        "patch",
        "default-changed",
    ),
    (
        "annotations only",
        {"type": "string", "title": "A", "description": "x", "examples": ["a"]},
        {"type": "string", "title": "B", "description": "y", "examples": ["b"]},
        "patch",
        "patch",
        "annotation-changed",
    ),
    (
        "pattern changed (cannot prove)",
        {"type": "string", "pattern": "^a"},
        {"type": "string", "pattern": "^[ab]"},
        "major",
        "major",
        "pattern-changed",
    ),
    (
        "if changed (cannot prove)",
        {"if": {"minimum": 1}, "then": {"maximum": 5}},
        {"if": {"minimum": 2}, "then": {"maximum": 5}},
        "major",
        "major",
        "conditional-changed",
    ),
    ("nothing changed", obj({"a": STR}), obj({"a": STR}), "none", "none", ""),
]


def nested(schema: S) -> tuple[S, dict[str, S]]:
    return obj({"outer": schema}, ("outer",)), {}


def in_array(schema: S) -> tuple[S, dict[str, S]]:
    return {"type": "array", "items": schema}, {}


def by_ref(schema: S) -> tuple[S, dict[str, S]]:
    return {"$ref": "common.json#/definitions/thing"}, {"common.json": {"definitions": {"thing": schema}}}


def in_any_of(schema: S) -> tuple[S, dict[str, S]]:
    return {"anyOf": [schema, {"type": "null"}]}, {}


def at_root(schema: S) -> tuple[S, dict[str, S]]:
    return schema, {}


CONTEXTS: dict[str, Callable[[S], tuple[S, dict[str, S]]]] = {
    "root": at_root,
    "nested object": nested,
    "array items": in_array,
    "$ref to a sibling file": by_ref,
    "anyOf branch": in_any_of,
}


def docs(root: S, siblings: dict[str, S]) -> SchemaDocs:
    schemas = {ROOT: root, **siblings}
    return SchemaDocs(schemas, {name: json.dumps(s, indent=2) for name, s in schemas.items()})


def changes(old: S, new: S, direction: str, context: str = "root") -> list[Any]:
    wrap = CONTEXTS[context]
    return diff_schema(docs(*wrap(old)), docs(*wrap(new)), ROOT, direction)  # type: ignore[arg-type]


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("direction", ["input", "output"])
@pytest.mark.parametrize(("row", "old", "new", "in_bump", "out_bump", "rule"), TABLE, ids=[r[0] for r in TABLE])
def test_each_row_of_the_rule_table_needs_its_bump_in_each_direction_and_context(
    row: str, old: S, new: S, in_bump: str, out_bump: str, rule: str, direction: str, context: str
) -> None:
    found = changes(old, new, direction, context)
    expected = in_bump if direction == "input" else out_bump
    assert max_bump(c.bump for c in found) == expected, [str(c) for c in found]
    if rule and context != "anyOf branch":  # in a branch an unrelated type is a removed and an added branch
        assert f"{direction}-{rule}" in {c.rule for c in found}, [str(c) for c in found]


def test_removing_a_property_of_an_open_input_object_is_flagged() -> None:
    (change,) = changes(obj({"a": STR, "b": INT}), obj({"a": STR}), "input")
    assert change.flagged
    assert "no longer described" in change.message


def test_a_change_behind_a_ref_is_located_in_the_sibling_file_with_its_line() -> None:
    (change,) = changes(
        {"type": "string", "maxLength": 9}, {"type": "string", "maxLength": 3}, "input", "$ref to a sibling file"
    )
    assert change.file == "schemas/common.json"
    assert change.pointer == "/definitions/thing/maxLength"
    assert change.line == 5
    assert change.side == "new"


def test_a_removal_is_located_in_the_old_file() -> None:
    found = changes(
        obj({"a": STR, "b": INT}, additionalProperties=False), obj({"a": STR}, additionalProperties=False), "input"
    )
    (change,) = found
    assert (change.side, change.pointer, change.location) == (
        "old",
        "/properties/b",
        "schemas/input_schema.json:7 (old)",
    )


def test_the_payload_place_of_a_nested_change_is_its_instance_path() -> None:
    (change,) = changes({"type": "integer"}, {"type": "number"}, "input", "nested object")
    assert change.where == "/outer"
    (change,) = changes({"type": "integer"}, {"type": "number"}, "input", "array items")
    assert change.where == "/*"


def test_not_turns_a_widening_into_a_narrowing() -> None:
    found = changes({"not": {"type": "string"}}, {"not": {"type": ["string", "null"]}}, "input")
    assert [(c.rule, c.bump) for c in found] == [("input-not-type-widened", "major")]
    found = changes({"not": {"type": "string"}}, {"not": {"type": ["string", "null"]}}, "output")
    assert [(c.rule, c.bump) for c in found] == [("output-not-type-widened", "minor")]


def test_overlapping_one_of_branches_cannot_be_proven_compatible() -> None:
    found = changes({"oneOf": [INT, STR]}, {"oneOf": [{"type": "number"}, STR]}, "input")
    assert "input-one-of-overlap" not in {c.rule for c in found}  # number and string are disjoint
    found = changes({"oneOf": [INT, STR]}, {"oneOf": [INT, STR, {"type": "number"}]}, "input")
    assert "input-one-of-overlap" in {c.rule for c in found}
    assert max_bump(c.bump for c in found) == "major"


def test_one_of_branches_discriminated_by_a_const_property_are_disjoint() -> None:
    cat = obj({"kind": {"const": "cat"}, "lives": INT}, ("kind",))
    dog = obj({"kind": {"const": "dog"}, "bark": STR}, ("kind",))
    bird = obj({"kind": {"const": "bird"}}, ("kind",))
    found = changes({"oneOf": [cat, dog]}, {"oneOf": [cat, dog, bird]}, "input")
    assert [(c.rule, c.bump) for c in found] == [("input-one-of-branch-added", "minor")]


def test_any_of_branches_are_matched_by_content_not_position() -> None:
    found = changes({"anyOf": [STR, INT]}, {"anyOf": [INT, {"type": "string", "maxLength": 3}]}, "input")
    assert [c.rule for c in found] == ["input-max-length-set"]


def test_a_recursive_schema_is_compared_once_per_pair() -> None:
    def tree(leaf: S) -> S:
        return {
            "definitions": {"t": obj({"kids": {"type": "array", "items": {"$ref": "#/definitions/t"}}, "n": leaf})},
            "$ref": "#/definitions/t",
        }

    found = changes(tree(INT), tree({"type": "number"}), "input")
    assert [(c.rule, c.where) for c in found] == [("input-type-widened", "/n")]


def test_refactoring_a_subschema_into_a_ref_is_no_change() -> None:
    inline = obj({"a": {"type": "string", "maxLength": 3}})
    refd = {**obj({"a": {"$ref": "#/definitions/a"}}), "definitions": {"a": {"type": "string", "maxLength": 3}}}
    assert changes(inline, refd, "input") == []


def test_an_unresolvable_ref_cannot_be_proven_compatible() -> None:
    found = changes(STR, {"$ref": "#/definitions/missing"}, "input")
    assert [(c.rule, c.bump) for c in found] == [("input-ref-unresolvable", "major")]


def test_tuple_positions_compare_with_the_items_that_stand_for_them() -> None:
    old = {"type": "array", "items": [INT], "additionalItems": False}
    new = {"type": "array", "items": [INT, STR], "additionalItems": False}
    found = changes(old, new, "input")
    assert max_bump(c.bump for c in found) == "minor"
    assert max_bump(c.bump for c in changes(new, old, "input")) == "major"


def test_dependencies_are_compared_by_property() -> None:
    old = {"type": "object", "dependencies": {"a": ["b"]}}
    new = {"type": "object", "dependencies": {"a": ["b", "c"]}}
    assert [c.rule for c in changes(old, new, "input")] == ["input-dependent-required-added"]
    assert max_bump(c.bump for c in changes(new, old, "input")) == "minor"


def test_a_changed_draft_cannot_be_proven_compatible() -> None:
    old = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}
    new = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string"}
    assert [c.rule for c in changes(old, new, "input")] == ["input-schema-draft-changed"]


def test_a_schema_past_the_depth_limit_stops_with_one_undecidable_change() -> None:
    def deep(n: int, leaf: S) -> S:
        schema = leaf
        for _ in range(n):
            schema = {"type": "array", "items": schema}
        return schema

    found = changes(deep(150, INT), deep(150, {"type": "number"}), "input")
    assert [c.rule for c in found] == ["input-schema-too-deep"]


def test_a_shared_ref_explosion_is_bounded() -> None:
    defs = {
        f"d{i}": {"anyOf": [{"$ref": f"#/definitions/d{i + 1}"}, {"$ref": f"#/definitions/d{i + 1}"}]}
        for i in range(40)
    }
    old = {"definitions": {**defs, "d40": INT}, "$ref": "#/definitions/d0"}
    new = {"definitions": {**defs, "d40": {"type": "number"}}, "$ref": "#/definitions/d0"}
    found = changes(old, new, "input")
    assert max_bump(c.bump for c in found) == "minor"


def test_the_json_locator_finds_keys_and_items() -> None:
    text = '{\n  "a": {"b": [1,\n    {"c/d": 2}]},\n  "e": "x"\n}'
    locator = JsonLocator(text)
    assert [locator.line(p) for p in ("", "/a", "/a/b/1", "/a/b/1/c~1d", "/e", "/missing/x")] == [1, 2, 3, 3, 4, 1]
