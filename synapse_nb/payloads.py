"""Host-side checks every invocation passes through, whichever runner executes it.

Payloads and results cross the boundary as JSON: a payload is encoded (and size-checked) before it is handed
to the plugin and the plugin sees exactly what JSON can carry; a result must be JSON (no NaN, no sets, no
objects) and is validated against ``output_schema.json`` here, on the host, never only inside the sandbox.
Validation counts against the call's time budget when given its deadline (exit 5 past it), and no value, however
deep, large or strange, makes these functions fail with anything but their documented errors.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .errors import PluginFailed, ResourceLimitExceeded, ValidationError
from .schemas import INPUT_SCHEMA, OUTPUT_SCHEMA, SchemaSet

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


def _not_json(exc: Exception) -> str:
    """Why ``json.dumps`` refused a value, in one line (its huge-int message is long and names a Python knob)."""
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    text = str(exc)
    if "integer string conversion" in text:
        return f"an integer has more than {sys.get_int_max_str_digits()} digits"
    if isinstance(exc, UnicodeEncodeError):
        return "a string holds a lone surrogate (not Unicode text)"
    return text


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


def encode_payload(payload: Any, *, plugin: str, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """UTF-8 JSON of ``payload``; a clear error when it is not JSON or over the size cap."""
    try:
        data = _dumps(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(
            f"input is not JSON: {_not_json(exc)}", plugin=plugin, pointer="", direction="input"
        ) from None
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
        data = _dumps(result)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PluginFailed(
            f"returned something that is not JSON: {_not_json(exc)}", plugin=plugin, exc_type="NotJSON"
        ) from None
    if len(data) > max_bytes:
        raise ResourceLimitExceeded(
            f"output is {_size(len(data))}, over the output limit of {_size(max_bytes)}",
            plugin=plugin,
            limit="max_output_bytes",
            value=max_bytes,
        )
    return data


def validate_input(
    schemas: SchemaSet, payload: Any, *, deadline: float | None = None, timeout_ms: int | None = None
) -> Any:
    """Validate a decoded payload against ``input_schema.json`` (exit 3 with the pointer when it fails).

    ``deadline`` is a :func:`time.monotonic` value: validation still running then raises
    :class:`~synapse_nb.errors.PluginTimeout` (exit 5) within the margin of :mod:`synapse_nb.budget`.
    """
    return schemas.validate(INPUT_SCHEMA, payload, direction="input", deadline=deadline, timeout_ms=timeout_ms)


def validate_output(
    schemas: SchemaSet, result: Any, *, deadline: float | None = None, timeout_ms: int | None = None
) -> Any:
    """Validate a decoded result against ``output_schema.json`` (same rules as :func:`validate_input`)."""
    return schemas.validate(OUTPUT_SCHEMA, result, direction="output", deadline=deadline, timeout_ms=timeout_ms)
