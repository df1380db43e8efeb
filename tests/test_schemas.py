"""schemas/: drafts, sibling $ref, no remote fetching, payload validation with JSON pointers."""

from __future__ import annotations

import json
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
