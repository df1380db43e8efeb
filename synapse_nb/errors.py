"""Every error synapse_nb raises on purpose, and the exit code each one maps to.

The hierarchy (exit code and machine-readable ``code`` in brackets)::

    SynapseError                         [1 internal]
    ├── UsageError                       [2 usage]
    ├── InvalidError                     [3 invalid]
    │   ├── ManifestError                    manifest.yaml problems, all of them, located
    │   ├── SchemaError                      schemas/*.json is not a valid JSON Schema
    │   ├── ValidationError                  a payload or result does not match its schema
    │   ├── RequirementsError                requirements.txt is not PEP 508
    │   ├── DependencyError                  requirements cannot be installed (missing, conflicting, build failed)
    │   └── HandlerError                     handler.py does not compile or define one handler
    ├── SignatureError                   [4 signature]
    ├── SandboxError                     [8 sandbox]   the sandbox cannot run or policy refuses
    │   ├── PluginTimeout                [5 timeout]
    │   ├── ResourceLimitExceeded        [6 limit]
    │   ├── PluginFailed                 [7 plugin-failed]
    │   │   └── PluginCrashed                the worker died (signal or exit status)
    │   └── CircuitOpen                  [8 circuit-open]
    └── RegistryError                    [9 registry]

Context lives on attributes (``plugin``, ``path``, ``line``, ``pointer``, ``limit``...), and ``str(err)`` is
always a single line that names the culprit.  ``details`` holds the few extra lines a CLI may print below it.

This module imports only the standard library: the sandbox's guest runtime imports it too.
"""

from __future__ import annotations

# The guest runtime imports this module at every cold start: no dataclasses, no typing at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "EXIT_CODE_NAMES",
    "CircuitOpen",
    "DependencyError",
    "HandlerError",
    "InvalidError",
    "ManifestError",
    "PluginCrashed",
    "PluginFailed",
    "PluginTimeout",
    "Problem",
    "RegistryError",
    "RequirementsError",
    "ResourceLimitExceeded",
    "SandboxError",
    "SchemaError",
    "SignatureError",
    "SynapseError",
    "UsageError",
    "ValidationError",
]


class Problem:
    """One located problem in a plugin file: ``file:line:col: pointer: message`` (immutable)."""

    __slots__ = ("col", "file", "line", "message", "pointer")

    file: str
    message: str
    line: int | None
    col: int | None
    pointer: str | None

    def __init__(
        self, file: str, message: str, line: int | None = None, col: int | None = None, pointer: str | None = None
    ) -> None:
        for name, value in (("file", file), ("message", message), ("line", line), ("col", col), ("pointer", pointer)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Problem is immutable; cannot set {name!r}")

    def _key(self) -> tuple[str, str, int | None, int | None, str | None]:
        return (self.file, self.message, self.line, self.col, self.pointer)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        if self.pointer is not None:
            return f"{where}: {self.pointer or '/'}: {self.message}"
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "pointer": self.pointer,
            "message": self.message,
        }


class SynapseError(Exception):
    """Base of every synapse_nb error; ``str()`` is one line naming what is wrong and where."""

    exit_code = 1
    code = "internal"

    def __init__(self, message: str, *, plugin: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.plugin = plugin
        self.details: list[str] = list(details or [])

    def __str__(self) -> str:
        if self.plugin and not self.message.startswith(f"{self.plugin}:"):
            return f"{self.plugin}: {self.message}"
        return self.message

    def to_json(self) -> dict[str, Any]:
        """The ``error`` object of the CLI's ``--json`` output."""
        out: dict[str, Any] = {"code": self.code, "exit_code": self.exit_code, "message": str(self)}
        if self.plugin:
            out["plugin"] = self.plugin
        if self.details:
            out["details"] = self.details
        out.update(self._extra_json())
        return out

    def _extra_json(self) -> dict[str, Any]:
        return {}


class UsageError(SynapseError):
    """The command line or an API call was used wrongly (bad option, missing argument)."""

    exit_code = 2
    code = "usage"


class InvalidError(SynapseError):
    """Something failed validation: a manifest, a schema, an input or an output."""

    exit_code = 3
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        problems: list[Problem] | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.problems: list[Problem] = list(problems or [])

    @classmethod
    def from_problems(cls, problems: list[Problem], *, plugin: str | None = None) -> InvalidError:
        """One error for several located problems: the first in the message, every one in ``problems``."""
        if not problems:
            raise ValueError("from_problems needs at least one problem")
        first = str(problems[0])
        more = len(problems) - 1
        message = first if not more else f"{first} (and {more} more problem{'s' if more > 1 else ''})"
        return cls(message, plugin=plugin, problems=problems, details=[str(p) for p in problems[1:]])

    @property
    def path(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def pointer(self) -> str | None:
        return self.problems[0].pointer if self.problems else None

    def _extra_json(self) -> dict[str, Any]:
        return {"problems": [p.to_json() for p in self.problems]} if self.problems else {}


class ManifestError(InvalidError):
    """manifest.yaml is unreadable or breaks the manifest v1 schema; ``problems`` lists every issue."""


class SchemaError(InvalidError):
    """A file under schemas/ is not valid JSON or not a valid JSON Schema for its draft."""


class RequirementsError(InvalidError):
    """requirements.txt has a line that is not a PEP 508 requirement we accept."""


class DependencyError(InvalidError):
    """A plugin's requirements cannot be installed from the configured index or wheelhouse.

    A requirement that matches no distribution, conflicting pins, a hash mismatch or an sdist whose build
    failed. ``requirement`` names the distribution when known; ``line`` (from ``problems``) its requirements.txt
    line. Index or network failures are :class:`RegistryError`; a full disk is :class:`ResourceLimitExceeded`.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        requirement: str | None = None,
        problems: list[Problem] | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, problems=problems, details=details)
        self.requirement = requirement

    def _extra_json(self) -> dict[str, Any]:
        return {**super()._extra_json(), "requirement": self.requirement}


class HandlerError(InvalidError):
    """handler.py does not compile, does not import, or does not define exactly one handler class."""


class ValidationError(InvalidError):
    """A payload or a result does not match its JSON Schema.

    ``pointer`` is the JSON pointer of the offending value inside the payload, ``schema`` the schema file name
    and ``direction`` one of ``"input"``, ``"output"`` or ``None`` for an explicit ``validate_with_schema``.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        pointer: str = "",
        schema: str | None = None,
        direction: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self._pointer = pointer
        self.schema = schema
        self.direction = direction

    @property
    def pointer(self) -> str:
        return self._pointer

    def _extra_json(self) -> dict[str, Any]:
        return {"pointer": self._pointer, "schema": self.schema, "direction": self.direction}


class SignatureError(SynapseError):
    """The plugin is unsigned, tampered with, or signed by a certificate we do not trust."""

    exit_code = 4
    code = "signature"

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        reason: str = "invalid",
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.reason = reason

    def _extra_json(self) -> dict[str, Any]:
        return {"reason": self.reason}


class SandboxError(SynapseError):
    """The sandbox is unavailable on this host, or policy refuses to run the plugin."""

    exit_code = 8
    code = "sandbox"


class PluginTimeout(SandboxError):
    """The plugin did not answer within ``spec.execution.timeout``; its worker was killed and replaced."""

    exit_code = 5
    code = "timeout"

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        timeout_ms: int = 0,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.timeout_ms = timeout_ms
        self.limit = "timeout"

    def _extra_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "value": f"{self.timeout_ms}ms"}


class ResourceLimitExceeded(SandboxError):
    """A resource limit was hit: memory, processes, output size or payload size. ``limit`` names it."""

    exit_code = 6
    code = "limit"

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        limit: str,
        value: Any = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.limit = limit
        self.value = value

    def _extra_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "value": self.value}


class PluginFailed(SandboxError):
    """The plugin raised, or returned something that is not JSON."""

    exit_code = 7
    code = "plugin-failed"

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        exc_type: str | None = None,
        location: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.exc_type = exc_type
        self.location = location

    def _extra_json(self) -> dict[str, Any]:
        return {"exc_type": self.exc_type, "location": self.location}


class PluginCrashed(PluginFailed):
    """The worker process died: killed by a signal or exited on its own. ``signal``/``status`` say how."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        signal: str | None = None,
        status: int | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.signal = signal
        self.status = status

    def _extra_json(self) -> dict[str, Any]:
        return {"signal": self.signal, "status": self.status}


class CircuitOpen(SandboxError):
    """The plugin failed too often recently; calls are refused until the circuit half-opens.

    ``retry_after_ms`` is how long until the next probe call is let through (0 while a probe is in flight),
    ``circuit`` the circuit's state (``open`` or ``half-open``).
    """

    code = "circuit-open"

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        retry_after_ms: int = 0,
        circuit: str = "open",
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.retry_after_ms = retry_after_ms
        self.circuit = circuit

    def _extra_json(self) -> dict[str, Any]:
        return {"circuit": self.circuit, "retry_after_ms": self.retry_after_ms}


class RegistryError(SynapseError):
    """A registry, network or authentication failure."""

    exit_code = 9
    code = "registry"


EXIT_CODE_NAMES = {
    0: "ok",
    1: "internal",
    2: "usage",
    3: "invalid",
    4: "signature",
    5: "timeout",
    6: "limit",
    7: "plugin-failed",
    8: "sandbox",
    9: "registry",
}
