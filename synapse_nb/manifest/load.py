"""Reading manifest.yaml: YAML with positions, the v1 JSON Schema, then the typed model.

Every problem is reported as ``manifest.yaml:LINE:COL: /json/pointer: message`` and all of them are collected
before raising, so a user fixes a manifest in one pass rather than one error at a time.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ManifestError, Problem
from ..semver import SemVer
from ..units import parse_duration_ms
from ..yamlpos import LocatedDocument, YamlProblems, json_pointer, load_located_yaml
from .model import (
    BatchPolicy,
    CachePolicy,
    Execution,
    Interface,
    Manifest,
    NetworkAccess,
    Permissions,
    RuntimeRequirement,
    SystemResources,
)

__all__ = [
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "PLUGIN_NAME",
    "load_manifest",
    "manifest_schema",
    "parse_manifest",
]

MANIFEST_FILE = "manifest.yaml"
MAX_MANIFEST_BYTES = 1 << 20
MAX_TIMEOUT_MS = 24 * 3_600_000
# A plugin name: a lower-case DNS label (the one copy of this pattern; the manifest schema states it too).
PLUGIN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

_JSON_TYPES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The manifest v1 JSON Schema shipped inside the package."""
    text = resources.files(__package__).joinpath("manifest-v1.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(manifest_schema())


@functools.cache
def _fast_check() -> Any:
    """The compiled fast path for valid manifests; jsonschema still explains every invalid one."""
    from ..fastschema import compile_is_valid

    return compile_is_valid(manifest_schema(), 2020)


def _describe(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problems(doc: LocatedDocument) -> list[Problem]:
    problems: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        pointer = json_pointer(tuple(error.absolute_path))
        schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
        keyword = error.validator
        value = error.instance
        if keyword == "additionalProperties":
            known = sorted(schema.get("properties", {}))
            extras = [k for k in value if k not in schema.get("properties", {})] if isinstance(value, dict) else []
            for key in extras:
                hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else f" (expected one of: {', '.join(known)})"
                child = pointer + json_pointer((key,))
                problems.append(doc.problem(child, f"unknown key {key!r}{suggestion}", prefer_key=True))
            continue
        if keyword == "required":
            missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
            for key in missing:
                problems.append(doc.problem(pointer, f"missing required key {key!r}", prefer_key=True))
            continue
        if keyword == "type":
            expected = error.validator_value
            message = f"expected {_describe_type(expected)}, got {_describe(value)} {_shown(value)}"
            if pointer == "/metadata/version" and isinstance(value, (int, float)):
                message += " (quote it and use MAJOR.MINOR.PATCH, e.g. '1.2.0')"
            problems.append(doc.problem(pointer, message))
            continue
        custom = schema.get(f"x-error-{keyword}") or (
            schema.get("x-error") if keyword in {"pattern", "const", "format"} else None
        )
        if custom:
            message = custom if keyword.startswith("min") else f"{_shown(value)} {custom}"
        elif keyword == "enum":
            choices = ", ".join(repr(c) for c in error.validator_value)
            message = f"{_shown(value)} is not one of {choices}"
        elif keyword == "minItems":
            message = f"needs at least {error.validator_value} item(s)"
        elif keyword == "minProperties":
            message = f"needs at least {error.validator_value} entr{'y' if error.validator_value == 1 else 'ies'}"
        elif keyword == "uniqueItems":
            message = "items must be unique"
        else:
            message = error.message
        problems.append(doc.problem(pointer, message))
    return problems


def _describe_type(expected: Any) -> str:
    names = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "null": "null",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(str(t), str(t)) for t in expected)
    return names.get(expected, str(expected))


def _semantic_problems(doc: LocatedDocument) -> list[Problem]:
    """Checks JSON Schema cannot express, each located."""
    data = doc.data
    spec = data.get("spec", {})
    problems: list[Problem] = []
    execution = spec.get("execution", {})
    timeout = execution.get("timeout")
    if isinstance(timeout, str):
        try:
            ms = parse_duration_ms(timeout)
        except ValueError:
            ms = None
        if ms is not None and not 0 < ms <= MAX_TIMEOUT_MS:
            problems.append(doc.problem("/spec/execution/timeout", f"{timeout!r} must be more than 0 and at most 24h"))
    if execution.get("trigger") == "event" and not spec.get("events", {}).get("topics"):
        problems.append(
            doc.problem(
                "/spec/execution/trigger",
                "trigger 'event' needs spec.events.topics (the topics this plugin subscribes to)",
            )
        )
    for i, name in enumerate(spec.get("secrets", []) or []):
        if isinstance(name, str) and name.startswith("SYNAPSE_"):
            problems.append(
                doc.problem(
                    f"/spec/secrets/{i}",
                    f"{name!r}: SYNAPSE_* variables configure synapse_nb itself and are never passed to plugins",
                )
            )
    names: dict[str, str] = {}
    for i, iface in enumerate(spec.get("interfaces", []) or []):
        endpoints = iface.get("endpoints") if isinstance(iface, dict) else None
        for name in endpoints if isinstance(endpoints, dict) else {}:
            pointer = f"/spec/interfaces/{i}/endpoints/{name}"
            if name in names:
                problems.append(
                    doc.problem(pointer, f"endpoint name {name!r} is already used at {names[name]}", prefer_key=True)
                )
            names.setdefault(name, pointer)
    return problems


def _build(data: dict[str, Any]) -> Manifest:
    meta = data["metadata"]
    spec = data["spec"]
    ex = spec.get("execution", {})
    perms = spec.get("permissions", {})
    res = perms.get("system_resources", {})
    batch = spec.get("batch")
    cache = spec.get("cache")
    return Manifest(
        name=meta["name"],
        version=SemVer.parse(meta["version"]),
        runtime=RuntimeRequirement.parse(spec["runtime"]),
        execution=Execution(
            trigger=ex.get("trigger", "sync"),
            timeout_ms=parse_duration_ms(ex["timeout"]) if "timeout" in ex else Execution().timeout_ms,
            entrypoint=ex.get("entrypoint"),
        ),
        interfaces=tuple(
            Interface(type=i["type"], protocol=i["protocol"], endpoints=dict(i["endpoints"]))
            for i in spec.get("interfaces", [])
        ),
        permissions=Permissions(
            network_access=NetworkAccess(tuple(perms.get("network_access", {}).get("domains", []))),
            system_resources=SystemResources(
                gpu=res.get("gpu", False), memory_mb=res.get("memory_mb", SystemResources().memory_mb)
            ),
        ),
        events=tuple(spec.get("events", {}).get("topics", [])),
        batch=BatchPolicy(**batch) if batch is not None else None,
        cache=CachePolicy(ttl_ms=parse_duration_ms(cache["ttl"])) if cache is not None else None,
        secrets=tuple(spec.get("secrets", [])),
        description=meta.get("description", ""),
        category=meta.get("category"),
        tags=tuple(meta.get("tags", [])),
        authors=tuple(meta.get("authors", [])),
        license=meta.get("license"),
        homepage=meta.get("homepage"),
        raw=data,
    )


def _sort_key(problem: Problem) -> tuple[int, int]:
    return (problem.line or 0, problem.col or 0)


def _label(data: dict[str, Any], fallback: str | None) -> str | None:
    """The plugin's name for error messages: the manifest's own when it is a valid name."""
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and PLUGIN_NAME.match(name):
        return name
    return fallback


def parse_manifest(raw: bytes | str, *, file: str = MANIFEST_FILE, plugin: str | None = None) -> Manifest:
    """Validate manifest text and build the model; :class:`ManifestError` lists every problem, located.

    ``plugin`` names the plugin in errors when the manifest's own name is missing or invalid.
    """
    try:
        doc = load_located_yaml(raw, file=file, max_bytes=MAX_MANIFEST_BYTES)
    except YamlProblems as exc:
        raise ManifestError.from_problems(exc.problems, plugin=plugin) from None
    if not isinstance(doc.data, dict):
        problem = doc.problem("", f"a manifest must be a mapping of keys, got {_describe(doc.data)}")
        raise ManifestError.from_problems([problem], plugin=plugin)
    fast = _fast_check()
    problems = [] if fast is not None and fast(doc.data) else _schema_problems(doc)
    if not problems:
        problems = _semantic_problems(doc)
    if problems:
        unique = sorted(set(problems), key=_sort_key)
        raise ManifestError.from_problems(unique, plugin=_label(doc.data, plugin))
    return _build(doc.data)


def load_manifest(folder: str | Path, *, display: str | None = None) -> Manifest:
    """Load ``folder/manifest.yaml``. ``display`` is how the file is named in errors (default: its path)."""
    path = Path(folder) / MANIFEST_FILE
    shown = display or str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError.from_problems(
            [
                Problem(
                    shown,
                    "no manifest.yaml here; is this a plugin folder? (synapse-cli plugin init creates one)",
                )
            ],
            plugin=Path(folder).name,
        ) from None
    except OSError as exc:
        raise ManifestError.from_problems(
            [Problem(shown, f"cannot read: {exc.strerror}")], plugin=Path(folder).name
        ) from exc
    if len(raw) > MAX_MANIFEST_BYTES:
        size = path.stat().st_size
        raise ManifestError.from_problems(
            [Problem(shown, f"file is {size / (1 << 20):.1f} MiB, over the 1 MiB limit for a manifest", 1, 1)],
            plugin=Path(folder).name,
        )
    return parse_manifest(raw, file=shown, plugin=Path(folder).resolve().name)
