"""jsonsafe: untrusted JSON decodes to a value or to one located exit-3 error, and JSON Schema equality hashes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synapse_nb.errors import ValidationError
from synapse_nb.jsonsafe import MAX_DEPTH, all_unique, equality_key, loads

tricky_text = st.text(alphabet='[]{}"\\,: ab\n\u00e9\U0001f600', max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 0, wrap: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value, "]]}"] if wrap == "list" else {"k[": value}
    return value


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_any_json_value_round_trips(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert loads(text, what="x") == value
    assert loads(text.encode(), what="x") == value


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 2 * MAX_DEPTH), st.sampled_from(["list", "dict"]), tricky_text)
def test_depth_is_accepted_exactly_up_to_the_limit(depth: int, wrap: str, leaf: str) -> None:
    text = json.dumps(nested(depth, leaf, wrap))
    if depth <= MAX_DEPTH:
        assert loads(text, what="x") == json.loads(text)
    else:
        with pytest.raises(ValidationError, match=f"x is not valid JSON: nested deeper than {MAX_DEPTH} levels"):
            loads(text, what="x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, r"nested deeper than 128 levels \(line 1, column 129\)"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 128 levels"),
        ("1" + "0" * 5000, r"an integer of 5001 digits is over the limit of 4300 \(line 1, column 1\)"),
        ('{"a": [1, 1e400]}', r"a number too large to represent .* \(line 1, column 11\)"),
        ('{"a":\n NaN}', r"NaN is not a JSON number \(line 2, column 2\)"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ('["ok", "\\ud800"]', r"a string holds a lone surrogate .* \(line 1, column 8\)"),
        ('{"a": 1,}', r"Expecting property name enclosed in double quotes \(line 1, column 9\)"),
        ("", "Expecting value"),
    ],
)
def test_hostile_text_is_a_located_validation_error(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match="input from --input is not valid JSON: " + message) as info:
        loads(text, what="input from --input", direction="input")
    assert info.value.exit_code == 3
    assert info.value.direction == "input"


def test_bytes_that_are_not_utf8_are_located() -> None:
    with pytest.raises(ValidationError, match=r"not UTF-8 \(byte 0xff\) \(line 2, column 3\)") as info:
        loads(b'[\n "\xff"]', what="reply")
    assert info.value.line == 2


def test_escaped_backslashes_and_surrogate_pairs_are_fine() -> None:
    assert loads('["\\\\ud800", "\\ud83d\\ude00"]', what="x") == ["\\ud800", "\U0001f600"]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps(["[" * 1000, "{" * 1000, '\\"[[[' * 200])
    assert loads(text, what="x") == json.loads(text)


def test_the_object_pairs_hook_is_applied_and_its_errors_reported() -> None:
    def refuse(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        raise ValueError("duplicate key 'a'")

    with pytest.raises(ValidationError, match="duplicate key 'a'"):
        loads('{"a": 1, "a": 2}', what="x", object_pairs_hook=refuse)


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 1.0], False),
        ([1, True], True),
        ([0, False, None, ""], True),
        ([{"a": 1, "b": [1, 2]}, {"b": [1.0, 2], "a": 1}], False),
        ([[1, True], [1, 1]], True),
        ([[True, ["b", 1]], [True, ["b", True]]], True),
        (["1", 1], True),
        ([{"a": None}, {"a": False}], True),
    ],
)
def test_unique_items_follow_json_schema_equality(items: list[Any], unique: bool) -> None:
    assert all_unique(items) is unique


@settings(max_examples=400, deadline=None)
@given(json_values, json_values)
def test_equality_keys_agree_with_jsonschema_equality(a: Any, b: Any) -> None:
    from jsonschema._utils import equal

    assert (equality_key(a) == equality_key(b)) == equal(a, b)


def test_a_value_that_is_not_json_has_no_key() -> None:
    with pytest.raises(TypeError, match="not a JSON value: tuple"):
        equality_key((1, 2))
