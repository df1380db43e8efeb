"""Host-side checks every invocation passes through, whichever runner executes it.

Payloads and results cross the boundary as JSON: a payload is encoded (and size-checked) before it is handed
to the plugin and the plugin sees exactly what JSON can carry; a result must be JSON (no NaN, no sets, no
objects) and is validated against ``output_schema.json`` here, on the host, never only inside the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import PluginFailed, ResourceLimitExceeded, ValidationError
from .schemas import INPUT_SCHEMA, OUTPUT_SCHEMA, SchemaSet, validation_error

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "encode_payload",
    "validate_input",
    "validate_output",
]

DEFAULT_MAX_PAYLOAD_BYTES = 16 << 20
DEFAULT_MAX_OUTPUT_BYTES = 16 << 20


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n} bytes"


def encode_payload(payload: Any, *, plugin: str, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """UTF-8 JSON of ``payload``; a clear error when it is not JSON or over the size cap."""
    try:
        data = json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"input is not JSON: {exc}", plugin=plugin, pointer="", direction="input") from None
    if len(data) > max_bytes:
        raise ResourceLimitExceeded(
            f"input is {_size(len(data))}, over the payload limit of {_size(max_bytes)}",
            plugin=plugin,
            limit="max_payload_bytes",
            value=max_bytes,
        )
    return data


def check_result_json(result: Any, *, plugin: str, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> bytes:
    """UTF-8 JSON of a handler's result, or PluginFailed/ResourceLimitExceeded saying why not."""
    try:
        data = json.dumps(result, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise PluginFailed(f"returned something that is not JSON: {exc}", plugin=plugin, exc_type="NotJSON") from None
    if len(data) > max_bytes:
        raise ResourceLimitExceeded(
            f"output is {_size(len(data))}, over the output limit of {_size(max_bytes)}",
            plugin=plugin,
            limit="max_output_bytes",
            value=max_bytes,
        )
    return data


def _validate(schemas: SchemaSet, name: str, value: Any, direction: str) -> Any:
    if schemas.check(name)(value):
        return value
    raise validation_error(schemas.validator(name), value, name=name, direction=direction, plugin=schemas.plugin)


def validate_input(schemas: SchemaSet, payload: Any) -> Any:
    """Validate a decoded payload against ``input_schema.json`` (exit 3 with the pointer when it fails)."""
    return _validate(schemas, INPUT_SCHEMA, payload, "input")


def validate_output(schemas: SchemaSet, result: Any) -> Any:
    """Validate a decoded result against ``output_schema.json``."""
    return _validate(schemas, OUTPUT_SCHEMA, result, "output")
