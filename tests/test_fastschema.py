"""The compiled fast path agrees with the bounded jsonschema classes (the truth) on every schema it accepts."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synapse_nb.boundedschema import bounded_class
from synapse_nb.fastschema import compile_is_valid

STOCK = {4: jsonschema.Draft4Validator, 6: jsonschema.Draft6Validator, 7: jsonschema.Draft7Validator,
         2019: jsonschema.Draft201909Validator, 2020: jsonschema.Draft202012Validator}  # fmt: skip
DRAFTS = {draft: bounded_class(cls) for draft, cls in STOCK.items()}
# Patterns where ECMA-262 (and so RE2 here) and Python's re differ, and the usual ones.
PATTERNS = ["^a", "b", "^[a-c]*$", r"^\s$", "^.$", "[^]", "[]", r"^\d+$", r"\bab", "a|^$", r"^\u0061", "^(a+)+$"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.sampled_from([1, 1.0, 0, 0.0, True, False])
    | st.text(alphabet="ab \n\u00a0\u2028\u0663\U0001f600", max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8,
)
types = st.sampled_from(["object", "array", "string", "number", "integer", "boolean", "null"])


def schemas() -> st.SearchStrategy[Any]:
    leaf = st.fixed_dictionaries(
        {},
        optional={
            "type": types | st.lists(types, min_size=1, max_size=3, unique=True),
            "minLength": st.integers(0, 3),
            "maxLength": st.integers(0, 3),
            "pattern": st.sampled_from(PATTERNS),
            "minimum": st.integers(-3, 3) | st.floats(-3, 3),
            "maximum": st.integers(-3, 3),
            "exclusiveMinimum": st.integers(-3, 3),
            "exclusiveMaximum": st.floats(-3, 3),
            "enum": st.lists(st.none() | st.booleans() | st.text(max_size=2), min_size=1, max_size=3),
            "const": st.none() | st.booleans() | st.sampled_from(["a", ""]),
            "minItems": st.integers(0, 2),
            "maxItems": st.integers(0, 2),
            "uniqueItems": st.booleans(),
            "minProperties": st.integers(0, 2),
            "maxProperties": st.integers(0, 2),
            "description": st.text(max_size=3),
        },
    )
    return st.recursive(
        leaf | st.booleans(),
        lambda inner: st.fixed_dictionaries(
            {},
            optional={
                "type": st.just("object"),
                "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
                "required": st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=2),
                "additionalProperties": inner,
                "items": inner,
                "propertyNames": st.fixed_dictionaries({"pattern": st.sampled_from(PATTERNS)}),
            },
        ),
        max_leaves=5,
    )


@settings(max_examples=1500, deadline=None)
@given(schemas(), json_values, st.sampled_from(sorted(DRAFTS)))
def test_compiled_checks_agree_with_jsonschema(schema: Any, instance: Any, draft: int) -> None:
    check = compile_is_valid(schema, draft)
    if check is None:
        return
    assert check(instance) == DRAFTS[draft](schema).is_valid(instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/definitions/x"},
        {"format": "date"},
        {"oneOf": [{}]},
        {"patternProperties": {"^a": {}}},
        {"items": [{"type": "string"}]},
        {"enum": [1, 2]},
        {"properties": {"a": {"anyOf": [{}]}}},
    ],
)
def test_unsupported_keywords_fall_back_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_is_valid(schema, 7) is None


def test_draft_4_is_left_to_jsonschema() -> None:
    assert compile_is_valid({"type": "integer"}, 4) is None


def test_integer_accepts_integral_floats_but_not_booleans() -> None:
    check = compile_is_valid({"type": "integer"}, 7)
    assert check is not None
    assert check(1.0) is True
    assert check(1.5) is False
    assert check(True) is False


malformed = st.one_of(st.none(), st.integers(-2, 2), st.text(max_size=3), st.sampled_from(["(", "[a-", "ok", "^a$"]))


def loose_schemas() -> st.SearchStrategy[Any]:
    keys = st.sampled_from(
        ["type", "properties", "required", "items", "minLength", "maximum", "pattern", "enum", "format", "title",
         "uniqueItems", "additionalProperties", "multipleOf", "oneOf", "$ref", "examples", "minProperties"]
    )  # fmt: skip
    values = st.one_of(
        malformed,
        st.lists(malformed, max_size=3),
        st.booleans(),
        st.floats(-1, 3, allow_nan=False),
        st.sampled_from(["string", "object", "integer", "nope"]),
        st.just({}),
        st.dictionaries(st.sampled_from(["a", "b"]), st.just({"type": "string"}), max_size=2),
    )
    return st.recursive(
        st.dictionaries(keys, values, max_size=4),
        lambda inner: st.dictionaries(keys, inner | values, max_size=3),
        max_leaves=6,
    )


@settings(max_examples=2000, deadline=None)
@given(st.one_of(loose_schemas(), schemas()), st.sampled_from([6, 7, 2019, 2020]))
def test_a_plainly_valid_schema_is_valid_for_its_metaschema(schema: Any, draft: int) -> None:
    from synapse_nb.fastschema import is_plainly_valid_schema

    if is_plainly_valid_schema(schema, draft):
        cls = DRAFTS[draft]
        meta = cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)
        assert meta.is_valid(schema), list(meta.iter_errors(schema))
