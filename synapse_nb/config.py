"""synapse_nb configuration: ``SYNAPSE_HOME/config``, and what a project's ``.synapse/config`` may add to it.

Both files are YAML. Every key is checked against the schema below and problems are reported located
(``.synapse/config:3:5: /sandbox/pids_max: ...``), so a typo never silently falls back to a default.
``${NAME}`` in a string value is replaced by the environment variable ``NAME`` when that value is used
(:func:`expand_env`), so a missing token only matters to the command that needs it; a string setting may be
``${NAME}`` as a whole (``state: ${STATE_URL}``): its value is then checked when it is used.

Trust: ``$SYNAPSE_HOME/config`` belongs to the user and may set anything. A project config is found by walking
up from the working directory, the way git finds a repository, and trusted only as far as git trusts a
repository (``safe.directory``): the walk stops where the owner or the file system changes; a config not
owned by this user (or root), or writable by group or others, is ignored with a warning. And even a trusted
project config may only name registries and plugin paths (:data:`PROJECT_KEYS`): the sandbox, the state
store, environments, limits, sessions and the secrets allowlist are honoured only from ``$SYNAPSE_HOME/config``,
so a file in a shared or parent folder can never switch isolation off or choose the nsjail binary.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, UsageError
from .paths import synapse_home
from .yamlpos import LocatedDocument, YamlProblems, json_pointer, load_located_yaml

__all__ = [
    "CONFIG_SCHEMA",
    "PROJECT_KEYS",
    "Config",
    "ConfigError",
    "EnvironmentSettings",
    "SandboxSettings",
    "SessionSettings",
    "expand_env",
    "load_config",
]

_POSITIVE = {"type": "integer", "minimum": 1}
_DURATION = r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$"
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
                # A worker idle this long is frozen (cgroup freezer) until its next call.
                "idle_freeze_ms": {"type": "integer", "minimum": 1, "maximum": 3_600_000},
                # Pre-warmed jails kept ready per recently used jail configuration (0: off), and their memory cap.
                "prewarm": {"type": "integer", "minimum": 0, "maximum": 8},
                "prewarm_memory_mb": {"type": "integer", "minimum": 16, "maximum": 1 << 20},
                "nsjail": {"type": "string", "minLength": 1},
            },
        },
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_payload_bytes": _POSITIVE,
                "max_output_bytes": _POSITIVE,
                "max_state_bytes": {"type": "integer", "minimum": 2, "maximum": 1 << 30},
            },
        },
        # Where plugin state and sessions live: sqlite:///PATH (default SYNAPSE_HOME/state.db), redis://...
        # or memcached://HOST:PORT
        "state": {"type": "string", "pattern": "^(sqlite|redis|rediss|unix|memcached)://"},
        # context.session: a per-plugin quota, and the TTL of values set without one.
        "sessions": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_keys": _POSITIVE,
                "max_bytes": _POSITIVE,
                "default_ttl": {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d))+$"},
            },
        },
        # Execution policies (synapse_nb.policies): host defaults; a plugin's manifest may set its own circuit.
        "policies": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "circuit": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "failures": {"type": "integer", "minimum": 1, "maximum": 100_000},
                        "window": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "failure_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "reset": {"type": "string", "pattern": _DURATION},
                    },
                },
                "retry": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "attempts": {"type": "integer", "minimum": 1, "maximum": 20},
                        "backoff": {"type": "string", "pattern": _DURATION},
                        "max_backoff": {"type": "string", "pattern": _DURATION},
                        "max_total": {"type": "string", "pattern": _DURATION},
                    },
                },
                "idempotency": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"window": {"type": "string", "pattern": _DURATION}},
                },
                "cache": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"max_entries": _POSITIVE, "max_bytes": _POSITIVE},
                },
            },
        },
        # Host environment variables a plugin may receive through spec.secrets (nothing else is ever passed).
        "secrets": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "allow": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}
            },
        },
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
        # Plugin registries (synapse_nb.registry): the spec's block; ${VAR} in auth is expanded at use time.
        "registries": {"type": "array", "items": {"$ref": "#/$defs/registry"}},
    },
    "$defs": {
        "registry": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "endpoint"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
                "endpoint": {"type": "string", "pattern": "^https?://[^/?#@]+(/[^?#]*)?$"},
                "auth": {
                    "type": "object",
                    "oneOf": [
                        {
                            "additionalProperties": False,
                            "required": ["type", "token"],
                            "properties": {"type": {"const": "oauth2"}, "token": {"type": "string", "minLength": 1}},
                        },
                        {
                            "additionalProperties": False,
                            "required": ["type", "token_url", "client_id", "client_secret"],
                            "properties": {
                                "type": {"const": "oauth2"},
                                "token_url": {"type": "string", "pattern": "^https?://"},
                                "client_id": {"type": "string", "minLength": 1},
                                "client_secret": {"type": "string", "minLength": 1},
                                "scope": {"type": "string"},
                            },
                        },
                    ],
                },
            },
        },
    },
}


# What a project's .synapse/config may set; everything else is honoured only from $SYNAPSE_HOME/config.
PROJECT_KEYS = frozenset({"registries", "plugins"})
_PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
# Schema keywords a whole-value ${NAME} may fail (it is a string; its expansion is checked when used).
_DEFERRED = frozenset({"pattern", "enum", "format", "minLength", "maxLength", "const"})


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
    max_state_bytes: int = 8 << 20
    idle_freeze_ms: int = 50
    prewarm: int = 1
    prewarm_memory_mb: int = 256


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
class SessionSettings:
    """``context.session``: at most ``max_keys`` keys and ``max_bytes`` of values per plugin (publisher), and
    values set without a TTL expire after ``default_ttl_s``."""

    max_keys: int = 10_000
    max_bytes: int = 64 << 20
    default_ttl_s: float = 24 * 3600.0


@dataclass(frozen=True)
class Config:
    """The merged configuration, the files it came from, and what was ignored in them (``warnings``)."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def sandbox(self) -> SandboxSettings:
        section = {**self.data.get("sandbox", {}), **self.data.get("limits", {})}
        nsjail = section.get("nsjail")
        if isinstance(nsjail, str):
            section["nsjail"] = expand_env(nsjail, where="config: sandbox.nsjail")
        return SandboxSettings(**section)

    @property
    def sessions(self) -> SessionSettings:
        from .units import parse_duration_ms

        section = dict(self.data.get("sessions", {}))
        if "default_ttl" in section:
            section["default_ttl_s"] = parse_duration_ms(section.pop("default_ttl")) / 1000
        return SessionSettings(**section)

    @property
    def secrets_allowed(self) -> frozenset[str]:
        """Host variables a plugin may receive through ``spec.secrets`` (config ``secrets.allow``)."""
        return frozenset(self.data.get("secrets", {}).get("allow", ()))

    @property
    def environments(self) -> EnvironmentSettings:
        section = dict(self.data.get("environments", {}))
        for key in ("find_links", "extra_index_urls"):
            if key in section:
                section[key] = tuple(section[key])
        return EnvironmentSettings(**section)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``; registries are merged by name, the home config's entry winning (a project
    may add registries, never replace the user's)."""
    out = dict(base)
    for key, value in over.items():
        if key == "registries" and isinstance(value, list) and isinstance(out.get(key), list):
            names = {r.get("name") for r in out[key] if isinstance(r, dict)}
            out[key] = [*out[key], *(r for r in value if not (isinstance(r, dict) and r.get("name") in names))]
            continue
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
        if error.validator in _DEFERRED and isinstance(error.instance, str) and _PLACEHOLDER.match(error.instance):
            continue  # a whole-value ${NAME}: checked when the value is used
        pointer = json_pointer(tuple(error.absolute_path))
        if error.validator == "additionalProperties":
            known = ", ".join(sorted(error.schema.get("properties", {})))
            for key in sorted(set(error.instance) - set(error.schema.get("properties", {}))):
                child = pointer + json_pointer((key,))
                problems.append(doc.problem(child, f"unknown key {key!r} (expected one of: {known})", prefer_key=True))
        else:
            problems.append(doc.problem(pointer, error.message))
    return problems


def _trusted_file(path: Path, uid: int) -> str | None:
    """Why ``path`` (a project config) is not trusted, or None: owned by this user or root, and neither it nor
    its folder writable by group or others."""
    for target in (path, path.parent):
        try:
            info = target.stat()
        except OSError as exc:
            return f"cannot stat {target}: {exc.strerror}"
        if info.st_uid not in (uid, 0):
            return f"{target} is owned by uid {info.st_uid}, not by you (uid {uid}) or root"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{target} is writable by group or others (mode {stat.filemode(info.st_mode)})"
    return None


def _project_config(start: Path, warnings: list[str]) -> Path | None:
    """The nearest trusted ``.synapse/config`` at or above ``start``, git-style (see the module docstring)."""
    uid = os.geteuid()
    try:
        first = start.stat()
    except OSError:
        return None
    for folder in (start, *start.parents):
        try:
            info = folder.stat()
        except OSError:
            return None
        if info.st_dev != first.st_dev or info.st_uid != first.st_uid:
            return None  # another file system or another owner: the project cannot extend that far
        candidate = folder / ".synapse" / "config"
        if candidate.is_file():
            why = _trusted_file(candidate, uid)
            if why is None:
                return candidate
            warnings.append(f"ignoring project config {candidate}: {why}")
            return None
    return None


def _project_part(doc: LocatedDocument, path: Path, warnings: list[str]) -> dict[str, Any]:
    """The keys a project config may set; the others are reported as ignored (never applied)."""
    data = doc.data or {}
    for key in sorted(set(data) - PROJECT_KEYS):
        line = doc.problem(json_pointer((key,)), "", prefer_key=True).line
        where = f"{path}:{line}" if line is not None else str(path)
        warnings.append(
            f"{where}: {key!r} is ignored in a project config: it is honoured only in $SYNAPSE_HOME/config "
            f"(a project config may set {', '.join(sorted(PROJECT_KEYS))})"
        )
    return {k: v for k, v in data.items() if k in PROJECT_KEYS}


def _read_doc(path: Path) -> LocatedDocument | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if not raw.strip():
        return None
    try:
        doc = load_located_yaml(raw, file=str(path))
    except YamlProblems as exc:
        raise ConfigError(str(exc.problems[0]), details=[str(p) for p in exc.problems[1:]]) from None
    problems = _check(doc)
    if problems:
        raise ConfigError(str(problems[0]), details=[str(p) for p in problems[1:]])
    return doc


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        print(f"warning: {text}", file=sys.stderr, flush=True)


def load_config(cwd: Path | None = None) -> Config:
    """Read ``$SYNAPSE_HOME/config`` and the trusted part of a project config; :class:`ConfigError` names every
    problem. What is ignored is in ``Config.warnings`` (and printed once per process on stderr)."""
    home = synapse_home() / "config"
    warnings: list[str] = []
    data: dict[str, Any] = {}
    sources = []
    doc = _read_doc(home)
    if doc is not None:
        data = dict(doc.data or {})
        sources.append(home)
    project = _project_config((cwd or Path.cwd()).resolve(), warnings)
    if project is not None and project.resolve() != home.resolve():
        doc = _read_doc(project)
        if doc is not None:
            data = _merge(data, _project_part(doc, project, warnings))
            sources.append(project)
    for text in warnings:
        _warn_once(text)
    return Config(data=data, sources=tuple(sources), warnings=tuple(warnings))


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, *, where: str) -> str:
    """Replace ``${NAME}`` with the environment variable's value; a missing one is a ConfigError naming it."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _VAR.sub(lookup, value)
