"""payloads: encoding and host-side validation never fail with anything but their documented errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.errors import PluginFailed, PluginTimeout, ValidationError
from synapse_nb.payloads import check_result_json, encode_payload, validate_input, validate_output
from synapse_nb.schemas import SchemaSet, load_schemas


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


NOT_JSON = [
    (nested(5000), "it is nested too deeply"),
    (10**5000, "an integer has more than 4300 digits"),
    ("\ud800", "a string holds a lone surrogate"),
    (float("nan"), "Out of range float values"),
    ({1, 2}, "Object of type set is not JSON serializable"),
]


@pytest.mark.parametrize(("value", "why"), NOT_JSON, ids=[why for _, why in NOT_JSON])
def test_an_input_that_is_not_json_is_exit_3_saying_why(value: Any, why: str) -> None:
    with pytest.raises(ValidationError, match=f"p: input is not JSON: {why}") as info:
        encode_payload(value, plugin="p")
    assert info.value.exit_code == 3


@pytest.mark.parametrize(("value", "why"), NOT_JSON, ids=[why for _, why in NOT_JSON])
def test_a_result_that_is_not_json_is_exit_7_saying_why(value: Any, why: str) -> None:
    with pytest.raises(PluginFailed, match=f"p: returned something that is not JSON: {why}") as info:
        check_result_json(value, plugin="p")
    assert info.value.exit_code == 7


def schemas_for(tmp_path: Path, output: Any, input_schema: Any = True) -> SchemaSet:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    (tmp_path / "schemas" / "input_schema.json").write_text(json.dumps(input_schema))
    (tmp_path / "schemas" / "output_schema.json").write_text(json.dumps(output))
    return load_schemas(tmp_path, plugin="p")


def test_validation_without_a_deadline_keeps_the_old_signature(tmp_path: Path) -> None:
    schemas = schemas_for(tmp_path, {"type": "integer"}, {"type": "string"})
    assert validate_input(schemas, "x") == "x"
    assert validate_output(schemas, 3) == 3
    with pytest.raises(ValidationError, match=r"p: output failed validation against output_schema\.json: /: 'x'"):
        validate_output(schemas, "x")


# Compiled fast path, and jsonschema (anyOf is not compiled): both are held to the deadline.
SLOW_SCHEMAS = [
    {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"n": {}}}]}},
]


@pytest.mark.parametrize("schema", SLOW_SCHEMAS)
def test_validation_still_running_at_the_deadline_is_a_timeout_within_the_margin(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    schemas = schemas_for(tmp_path, schema)
    output = [{"n": i} for i in range(400_000)]
    deadline = time.monotonic() + 0.02
    with pytest.raises(PluginTimeout, match=r"p: output validation against output_schema\.json exceeded the call's"):
        validate_output(schemas, output, deadline=deadline, timeout_ms=1500)
    assert time.monotonic() - deadline < 0.5  # documented margin: < 50 ms (bench_validation measures it)


def test_the_timeout_carries_the_calls_budget(tmp_path: Path) -> None:
    schemas = schemas_for(tmp_path, SLOW_SCHEMAS[1])
    with pytest.raises(PluginTimeout, match="time budget of 1500 ms") as info:
        validate_output(schemas, [{"n": 1}] * 300_000, deadline=time.monotonic(), timeout_ms=1500)
    assert info.value.exit_code == 5
    assert info.value.to_json()["value"] == "1500ms"


def test_validation_that_ends_in_time_is_not_a_timeout(tmp_path: Path) -> None:
    schemas = schemas_for(tmp_path, SLOW_SCHEMAS[1])
    assert validate_output(schemas, [{"n": 1}] * 10, deadline=time.monotonic() + 30) == [{"n": 1}] * 10


@pytest.mark.parametrize("schema", [{"items": {"$ref": "#"}}, {"items": {"anyOf": [{"$ref": "#"}]}}, True])
def test_a_deeply_nested_value_is_a_validation_error_not_a_crash(tmp_path: Path, schema: Any) -> None:
    schemas = schemas_for(tmp_path, schema)
    if schema is True:
        assert validate_output(schemas, nested(3000)) is not None
        return
    with pytest.raises(ValidationError, match=r"output is nested too deeply to validate against output_schema\.json"):
        validate_output(schemas, nested(3000))
