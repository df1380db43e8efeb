"""schemas/: drafts, sibling $ref, no remote fetching, payload validation with JSON pointers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synapse_nb.errors import SchemaError, ValidationError
from synapse_nb.schemas import load_schemas


def write(folder: Path, name: str, schema: object) -> None:
    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    text = schema if isinstance(schema, str) else json.dumps(schema)
    (folder / "schemas" / name).write_text(text)


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    write(tmp_path, "input_schema.json", {"type": "object", "properties": {"text": {"type": "string"}}})
    write(tmp_path, "output_schema.json", True)
    return tmp_path


def test_draft_07_is_the_default(plugin_dir: Path) -> None:
    write(plugin_dir, "input_schema.json", {"type": "object", "dependencies": {"a": ["b"]}})
    schemas = load_schemas(plugin_dir)
    assert type(schemas.validator("input_schema.json")).__name__ == "BoundedDraft7Validator"
    with pytest.raises(ValidationError, match="'b' is a dependency of 'a'"):
        schemas.validate("input_schema.json", {"a": 1})


def test_draft_2020_12_is_accepted(plugin_dir: Path) -> None:
    write(
        plugin_dir,
        "input_schema.json",
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "integer"}]},
    )
    schemas = load_schemas(plugin_dir)
    with pytest.raises(ValidationError, match=r"/0: 'x' is not of type 'integer'"):
        schemas.validate("input_schema.json", ["x"])


def test_an_unknown_draft_is_refused(plugin_dir: Path) -> None:
    write(plugin_dir, "input_schema.json", {"$schema": "http://example.com/my-draft"})
    with pytest.raises(SchemaError, match=r"input_schema.json: /\$schema: unsupported \$schema"):
        load_schemas(plugin_dir)


def test_invalid_json_is_located(plugin_dir: Path) -> None:
    write(plugin_dir, "output_schema.json", '{\n  "type": "object",\n  "properties": {,}\n}')
    with pytest.raises(SchemaError, match=r"schemas/output_schema.json:3:18: not valid JSON"):
        load_schemas(plugin_dir)


def test_duplicate_keys_in_a_schema_are_refused(plugin_dir: Path) -> None:
    write(plugin_dir, "output_schema.json", '{"type": "object", "type": "array"}')
    with pytest.raises(SchemaError, match="duplicate key 'type'"):
        load_schemas(plugin_dir)


def test_a_schema_that_is_not_valid_for_its_draft_names_the_pointer(plugin_dir: Path) -> None:
    write(plugin_dir, "input_schema.json", {"type": "object", "properties": {"n": {"type": "integr"}}})
    with pytest.raises(SchemaError, match=r"input_schema.json: /properties/n/type: not a valid draft-7 schema"):
        load_schemas(plugin_dir)


def test_a_missing_schema_file_is_named(tmp_path: Path) -> None:
    write(tmp_path, "input_schema.json", {})
    with pytest.raises(SchemaError, match=r"schemas/output_schema.json: missing"):
        load_schemas(tmp_path)


def test_ref_between_sibling_files_resolves(plugin_dir: Path) -> None:
    write(plugin_dir, "common.json", {"definitions": {"text": {"type": "string", "minLength": 2}}})
    write(plugin_dir, "input_schema.json", {"properties": {"text": {"$ref": "common.json#/definitions/text"}}})
    schemas = load_schemas(plugin_dir)
    assert schemas.validate("input_schema.json", {"text": "ok"}) == {"text": "ok"}
    with pytest.raises(ValidationError, match="/text: 'x' is too short"):
        schemas.validate("input_schema.json", {"text": "x"})


def test_ref_to_a_sibling_by_its_own_id_resolves(plugin_dir: Path) -> None:
    write(plugin_dir, "common.json", {"$id": "https://example.com/common.json", "type": "integer"})
    write(
        plugin_dir,
        "input_schema.json",
        {"$id": "https://example.com/input.json", "properties": {"n": {"$ref": "common.json"}}},
    )
    with pytest.raises(ValidationError, match="/n: 'x' is not of type 'integer'"):
        load_schemas(plugin_dir).validate("input_schema.json", {"n": "x"})


def test_remote_refs_are_never_fetched(plugin_dir: Path) -> None:
    write(plugin_dir, "input_schema.json", {"properties": {"x": {"$ref": "https://example.com/remote.json"}}})
    with pytest.raises(SchemaError, match="remote \\$ref fetching is disabled"):
        load_schemas(plugin_dir)


def test_a_ref_to_a_missing_sibling_is_an_error_at_load_time(plugin_dir: Path) -> None:
    write(plugin_dir, "input_schema.json", {"properties": {"x": {"$ref": "nothere.json"}}})
    with pytest.raises(SchemaError, match=r"/properties/x/\$ref: \$ref 'nothere.json' cannot be resolved"):
        load_schemas(plugin_dir)


def test_validation_errors_carry_the_pointer_and_count(plugin_dir: Path) -> None:
    write(
        plugin_dir,
        "input_schema.json",
        {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["c"]},
    )
    schemas = load_schemas(plugin_dir, plugin="p")
    with pytest.raises(ValidationError) as info:
        schemas.validate("input_schema.json", {"a": 1, "b": "x"}, direction="input")
    err = info.value
    assert err.direction == "input"
    assert err.schema == "input_schema.json"
    assert err.pointer in {"/a", "/b", ""}
    assert "(and 2 more)" in str(err)
    assert str(err).startswith("p: input failed validation against input_schema.json")


def test_formats_are_checked(plugin_dir: Path) -> None:
    write(plugin_dir, "input_schema.json", {"properties": {"when": {"type": "string", "format": "date"}}})
    with pytest.raises(ValidationError, match="/when: 'yesterday' is not a 'date'"):
        load_schemas(plugin_dir).validate("input_schema.json", {"when": "yesterday"})


@pytest.mark.parametrize("name", ["const", "enum", "default", "examples"])
def test_a_ref_under_a_property_named_like_a_value_keyword_resolves(plugin_dir: Path, name: str) -> None:
    write(plugin_dir, "common.json", {"definitions": {"n": {"type": "integer"}}})
    write(plugin_dir, "input_schema.json", {"properties": {name: {"$ref": "common.json#/definitions/n"}}})
    schemas = load_schemas(plugin_dir)
    assert schemas.validate("input_schema.json", {name: 1}) == {name: 1}
    with pytest.raises(ValidationError, match=f"/{name}: 'x' is not of type 'integer'"):
        schemas.validate("input_schema.json", {name: "x"})


@pytest.mark.parametrize("name", ["const", "enum", "default", "examples"])
def test_a_missing_ref_under_a_property_named_like_a_value_keyword_is_reported(plugin_dir: Path, name: str) -> None:
    write(plugin_dir, "input_schema.json", {"properties": {name: {"$ref": "nothere.json"}}})
    with pytest.raises(SchemaError, match=rf"/properties/{name}/\$ref: \$ref 'nothere.json' cannot be resolved"):
        load_schemas(plugin_dir)


def test_a_ref_inside_a_const_or_enum_value_is_data_not_a_reference(plugin_dir: Path) -> None:
    write(
        plugin_dir,
        "input_schema.json",
        {"properties": {"a": {"const": {"$ref": "nothere.json"}}, "b": {"enum": [{"$ref": "#/nowhere"}]}}},
    )
    schemas = load_schemas(plugin_dir)
    assert schemas.validate("input_schema.json", {"a": {"$ref": "nothere.json"}})
    with pytest.raises(ValidationError, match="/a: "):
        schemas.validate("input_schema.json", {"a": 1})


def test_a_ref_that_points_into_data_is_followed_and_checked(plugin_dir: Path) -> None:
    write(
        plugin_dir,
        "input_schema.json",
        {"x-parts": {"item": {"$ref": "nothere.json"}}, "properties": {"a": {"$ref": "#/x-parts/item"}}},
    )
    with pytest.raises(SchemaError, match=r"\$ref 'nothere.json' cannot be resolved"):
        load_schemas(plugin_dir)


@pytest.mark.parametrize(
    ("schema", "pointer", "reason"),
    [
        ({"properties": {"a": {"pattern": "^(?=a)"}}}, "/properties/a/pattern", "lookahead `(?=`"),
        ({"patternProperties": {"(x)\\1": {}}}, "/patternProperties/(x)\\1", "backreference"),
        ({"propertyNames": {"pattern": "(?<!a)b"}}, "/propertyNames/pattern", "negative lookbehind"),
        ({"items": [{"pattern": "a{2000}"}]}, "/items/0/pattern", "repeats more than 1000 times"),
        ({"definitions": {"d": {"pattern": "(?!x)"}}}, "/definitions/d/pattern", "negative lookahead"),
    ],
)
def test_a_pattern_the_linear_time_engine_refuses_is_a_schema_error_at_load(
    plugin_dir: Path, schema: dict[str, object], pointer: str, reason: str
) -> None:
    write(plugin_dir, "output_schema.json", schema)
    with pytest.raises(SchemaError) as info:
        load_schemas(plugin_dir)
    problem = info.value.problems[0]
    assert problem.file.endswith("schemas/output_schema.json")
    assert problem.pointer == pointer
    assert reason in problem.message
    assert "\n" not in str(info.value)


def test_a_refused_pattern_inside_a_value_is_not_a_schema(plugin_dir: Path) -> None:
    write(plugin_dir, "output_schema.json", {"const": {"pattern": "(?=x)"}, "examples": [{"pattern": "\\1"}]})
    assert load_schemas(plugin_dir).validate("output_schema.json", {"pattern": "(?=x)"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 200_000, "nested deeper than 128 levels"),
        ('{"type": "object", "properties": {"a": {"minimum": NaN}}}', "NaN is not a JSON number"),
        ('{"maxLength": 1' + "0" * 5000 + "}", "an integer of 5001 digits"),
        ('{"title": "\\udc00"}', "lone surrogate"),
        (b'{"title": "\xc3\x28"}', "not UTF-8"),
        ('{"properties": []}', "not a valid draft-7 schema"),
        ('{"properties": {"a": 3}}', "/properties/a: not a valid draft-7 schema"),
        ('{"pattern": 7}', "/pattern: not a valid draft-7 schema"),
        ('{"type": {"$ref": "x"}}', "/type: not a valid draft-7 schema"),
        ('{"$schema": 5}', "/$schema: $schema must be a string URI"),
        ('{"$ref": "http://[bad"}', "/$ref: not a valid draft-7 schema"),
        ("[1, 2]", "a schema must be an object or a boolean, got list"),
        ("", "not valid JSON"),
    ],
)
def test_any_schema_file_content_is_a_located_schema_error(plugin_dir: Path, text: str | bytes, message: str) -> None:
    (plugin_dir / "schemas" / "output_schema.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SchemaError, match=re.escape(message)) as info:
        load_schemas(plugin_dir)
    assert info.value.exit_code == 3
    assert info.value.problems[0].file.endswith("schemas/output_schema.json")


def test_a_schema_over_the_size_limit_is_refused(plugin_dir: Path) -> None:
    write(plugin_dir, "output_schema.json", {"description": "x" * (1 << 20)})
    with pytest.raises(SchemaError, match="over the 1 MiB limit"):
        load_schemas(plugin_dir)


def test_unique_items_uses_json_schema_equality(plugin_dir: Path) -> None:
    write(plugin_dir, "output_schema.json", {"uniqueItems": True})
    schemas = load_schemas(plugin_dir)
    assert schemas.validate("output_schema.json", [1, True, "1", {"a": 1}])
    with pytest.raises(ValidationError, match="has non-unique elements"):
        schemas.validate("output_schema.json", [{"a": 1, "b": 2}, {"b": 2, "a": 1.0}])
