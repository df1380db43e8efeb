"""synapse_nb configuration: ``SYNAPSE_HOME/config`` with a project's ``.synapse/config`` merged over it.

Both files are YAML. Every key is checked against the schema below and problems are reported located
(``.synapse/config:3:5: /sandbox/pids_max: ...``), so a typo never silently falls back to a default.
``${NAME}`` in a string value is replaced by the environment variable ``NAME`` when that value is used
(:func:`expand_env`), so a missing token only matters to the command that needs it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, UsageError
from .paths import synapse_home
from .yamlpos import LocatedDocument, YamlProblems, json_pointer, load_located_yaml

__all__ = [
    "CONFIG_SCHEMA",
    "Config",
    "ConfigError",
    "EnvironmentSettings",
    "SandboxSettings",
    "expand_env",
    "load_config",
]

_POSITIVE = {"type": "integer", "minimum": 1}
CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sandbox": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "require": {"enum": ["nsjail", "any"]},
                "isolation": {"enum": ["auto", "process"]},
                "pids_max": {"type": "integer", "minimum": 8, "maximum": 32768},
                "tmp_mb": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
                "fsize_mb": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
                "nofile": {"type": "integer", "minimum": 16, "maximum": 1 << 20},
                "cpu_seconds": {"type": "integer", "minimum": 1},
                "max_log_bytes": {"type": "integer", "minimum": 1024},
                "teardown_timeout_ms": {"type": "integer", "minimum": 10},
                "nsjail": {"type": "string", "minLength": 1},
            },
        },
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"max_payload_bytes": _POSITIVE, "max_output_bytes": _POSITIVE},
        },
        # Where plugin state and sessions live: sqlite:///PATH (default SYNAPSE_HOME/state.db) or redis://...
        "state": {"type": "string", "pattern": "^(sqlite|redis|rediss|unix)://"},
        "plugins": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"paths": {"type": "array", "items": {"type": "string", "minLength": 1}}},
        },
        # Dependency environments (synapse_nb.environments): where packages come from and how long builds live.
        "environments": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "find_links": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "index_url": {"type": "string", "minLength": 1},
                "extra_index_urls": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "reuse_kernel": {"type": "boolean"},
                "keep_days": {"type": "number", "minimum": 0},
                "build_timeout": {"type": "integer", "minimum": 1},
                "build_memory_mb": {"type": "integer", "minimum": 64},
            },
        },
        # The event log ($SYNAPSE_HOME/events.db): lifecycle, calls and benchmarks of every manager (eventlog.py).
        "events": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "max_rows": {"type": "integer", "minimum": 100},
                "max_days": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
}


class ConfigError(UsageError):
    """A configuration file is unreadable or breaks the config schema."""


@dataclass(frozen=True)
class SandboxSettings:
    """Host-side sandbox settings; the manifest's permissions add the per-plugin part."""

    require: str = "nsjail"
    # "auto": the best level this host gives (see synapse-cli doctor); "process": force rlimits-only workers
    # (still refused unless `require: any` or an explicit opt-in allows that level).
    isolation: str = "auto"
    pids_max: int = 64
    tmp_mb: int = 64
    fsize_mb: int = 64
    nofile: int = 256
    cpu_seconds: int = 3600
    max_log_bytes: int = 64 * 1024
    teardown_timeout_ms: int = 5_000
    nsjail: str | None = None
    max_payload_bytes: int = 16 << 20
    max_output_bytes: int = 16 << 20


@dataclass(frozen=True)
class EnvironmentSettings:
    """Where plugin dependencies come from and how their environments are built and kept.

    ``find_links`` set: offline, install from these folders only (no index). Else ``index_url`` and
    ``extra_index_urls`` if set, else pip's own configuration. ``reuse_kernel``: reuse the kernel's environment
    when it satisfies a plugin. ``keep_days``: ``synapse-cli env gc`` keeps environments used this recently.
    """

    find_links: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    reuse_kernel: bool = True
    keep_days: float = 30.0
    build_timeout: int = 1800
    build_memory_mb: int = 4096


@dataclass(frozen=True)
class Config:
    """The merged configuration and the files it came from."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()

    @property
    def sandbox(self) -> SandboxSettings:
        section = {**self.data.get("sandbox", {}), **self.data.get("limits", {})}
        return SandboxSettings(**section)

    @property
    def environments(self) -> EnvironmentSettings:
        section = dict(self.data.get("environments", {}))
        for key in ("find_links", "extra_index_urls"):
            if key in section:
                section[key] = tuple(section[key])
        return EnvironmentSettings(**section)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(CONFIG_SCHEMA)


def _check(doc: LocatedDocument) -> list[Problem]:
    if doc.data is None:
        return []
    if not isinstance(doc.data, dict):
        return [doc.problem("", "configuration must be a mapping of sections")]
    problems = []
    for error in _validator().iter_errors(doc.data):
        pointer = json_pointer(tuple(error.absolute_path))
        if error.validator == "additionalProperties":
            known = ", ".join(sorted(error.schema.get("properties", {})))
            for key in sorted(set(error.instance) - set(error.schema.get("properties", {}))):
                child = pointer + json_pointer((key,))
                problems.append(doc.problem(child, f"unknown key {key!r} (expected one of: {known})", prefer_key=True))
        else:
            problems.append(doc.problem(pointer, error.message))
    return problems


def _project_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".synapse" / "config"
        if candidate.is_file():
            return candidate
    return None


def load_config(cwd: Path | None = None) -> Config:
    """Read and merge the configuration files; :class:`ConfigError` names every problem."""
    paths = [synapse_home() / "config"]
    project = _project_config((cwd or Path.cwd()).resolve())
    if project is not None and project.resolve() != paths[0].resolve():
        paths.append(project)
    data: dict[str, Any] = {}
    sources = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        if not raw.strip():
            continue
        try:
            doc = load_located_yaml(raw, file=str(path))
        except YamlProblems as exc:
            raise ConfigError(str(exc.problems[0]), details=[str(p) for p in exc.problems[1:]]) from None
        problems = _check(doc)
        if problems:
            raise ConfigError(str(problems[0]), details=[str(p) for p in problems[1:]])
        data = _merge(data, doc.data or {})
        sources.append(path)
    return Config(data=data, sources=tuple(sources))


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, *, where: str) -> str:
    """Replace ``${NAME}`` with the environment variable's value; a missing one is a ConfigError naming it."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _VAR.sub(lookup, value)
