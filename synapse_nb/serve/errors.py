"""Errors on the wire: exit code -> gRPC status code and HTTP status, RFC 9457 problem details, and back.

One table (:data:`STATUS`) maps each :mod:`synapse_nb.errors` class to the gRPC code and HTTP status a served
call answers with; the error itself travels as its ``to_json()`` (code, exit code, message, plugin and the
class's attributes), so :func:`error_from_wire` rebuilds the same class with the same exit code on the client.

================================  ====  ===================  ==========
error                             exit  gRPC                 HTTP
================================  ====  ===================  ==========
UsageError                        2     INVALID_ARGUMENT     400
InvalidError (ValidationError...) 3     INVALID_ARGUMENT     422
SignatureError                    4     PERMISSION_DENIED    403
PluginTimeout                     5     DEADLINE_EXCEEDED    504
ResourceLimitExceeded             6     RESOURCE_EXHAUSTED   413 (payload size) / 429
PluginFailed (raised, not JSON)   7     INTERNAL             500
PluginCrashed (worker died)       7     ABORTED              500
SandboxError, CircuitOpen         8     UNAVAILABLE          503
RegistryError                     9     UNAVAILABLE          503
SynapseError (a bug)              1     INTERNAL             500
================================  ====  ===================  ==========

Besides those, the server's own refusals: a request that is not valid protobuf or JSON, or a malformed header
such as ``Idempotency-Key`` (INVALID_ARGUMENT / 400, exit 3), no such plugin or endpoint (NOT_FOUND / 404,
exit 2), a missing or wrong bearer token (UNAUTHENTICATED / 401, exit 9), an HTTP method a path does not take
(405, exit 2). A CircuitOpen answer also says when to retry (``Retry-After``, see :mod:`.headers`).
Pure: no gRPC or Starlette import.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

from .. import errors as _errors
from ..errors import (
    CircuitOpen,
    InvalidError,
    PluginCrashed,
    PluginFailed,
    PluginTimeout,
    Problem,
    RegistryError,
    ResourceLimitExceeded,
    SandboxError,
    SignatureError,
    SynapseError,
    UsageError,
)

__all__ = [
    "ERROR_DOMAIN",
    "PAYLOAD_LIMITS",
    "Malformed",
    "MethodNotAllowed",
    "NotServed",
    "Unauthenticated",
    "WireStatus",
    "error_from_wire",
    "error_json",
    "problem_details",
    "status_for",
]

ERROR_DOMAIN = "synapse.io"
PROBLEM_TYPE = "urn:synapse-nb:problem:"
# ResourceLimitExceeded limits that are the request's own size: HTTP 413 Content Too Large (else 429).
PAYLOAD_LIMITS = frozenset({"max_payload_bytes", "max_request_bytes"})


class NotServed(UsageError):
    """No served plugin or endpoint matches the request (NOT_FOUND / 404; a client sees UsageError, exit 2)."""


class MethodNotAllowed(UsageError):
    """An HTTP method a path does not take (405 with ``Allow``; a client sees UsageError, exit 2)."""


class Malformed(InvalidError):
    """The request is not valid protobuf or JSON, or nests too deep (INVALID_ARGUMENT / 400; exit 3)."""


class Unauthenticated(RegistryError):
    """No bearer token, or the wrong one (UNAUTHENTICATED / 401; a client sees RegistryError, exit 9)."""


@dataclass(frozen=True)
class WireStatus:
    """How one error is answered: a gRPC status code name and an HTTP status with its title."""

    grpc: str
    http: int
    title: str


# Most specific class first.
STATUS: tuple[tuple[type[SynapseError], WireStatus], ...] = (
    (NotServed, WireStatus("NOT_FOUND", 404, "Not Found")),
    (MethodNotAllowed, WireStatus("UNIMPLEMENTED", 405, "Method Not Allowed")),
    (Malformed, WireStatus("INVALID_ARGUMENT", 400, "Bad Request")),
    (Unauthenticated, WireStatus("UNAUTHENTICATED", 401, "Unauthorized")),
    (UsageError, WireStatus("INVALID_ARGUMENT", 400, "Bad Request")),
    (InvalidError, WireStatus("INVALID_ARGUMENT", 422, "Unprocessable Content")),
    (SignatureError, WireStatus("PERMISSION_DENIED", 403, "Forbidden")),
    (PluginTimeout, WireStatus("DEADLINE_EXCEEDED", 504, "Gateway Timeout")),
    (ResourceLimitExceeded, WireStatus("RESOURCE_EXHAUSTED", 429, "Too Many Requests")),
    (PluginCrashed, WireStatus("ABORTED", 500, "Internal Server Error")),
    (PluginFailed, WireStatus("INTERNAL", 500, "Internal Server Error")),
    (CircuitOpen, WireStatus("UNAVAILABLE", 503, "Service Unavailable")),
    (SandboxError, WireStatus("UNAVAILABLE", 503, "Service Unavailable")),
    (RegistryError, WireStatus("UNAVAILABLE", 503, "Service Unavailable")),
    (SynapseError, WireStatus("INTERNAL", 500, "Internal Server Error")),
)
TOO_LARGE = WireStatus("RESOURCE_EXHAUSTED", 413, "Content Too Large")

# A status that arrives without the error's JSON (a transport failure, a proxy, another server): the class
# the client raises, so that the exit code still says what happened.
FALLBACK_BY_GRPC: dict[str, type[SynapseError]] = {
    "INVALID_ARGUMENT": InvalidError,
    "NOT_FOUND": UsageError,
    "UNIMPLEMENTED": UsageError,
    "FAILED_PRECONDITION": UsageError,
    "OUT_OF_RANGE": UsageError,
    "PERMISSION_DENIED": SignatureError,
    "DEADLINE_EXCEEDED": PluginTimeout,
    "RESOURCE_EXHAUSTED": ResourceLimitExceeded,
    "ABORTED": PluginCrashed,
    "INTERNAL": PluginFailed,
    "DATA_LOSS": PluginFailed,
    "UNAVAILABLE": RegistryError,
    "UNAUTHENTICATED": RegistryError,
    "CANCELLED": RegistryError,
}
FALLBACK_BY_HTTP: dict[int, type[SynapseError]] = {
    400: UsageError,
    401: RegistryError,
    403: SignatureError,
    404: UsageError,
    405: UsageError,
    413: ResourceLimitExceeded,
    415: UsageError,
    422: InvalidError,
    429: ResourceLimitExceeded,
    500: PluginFailed,
    501: UsageError,
    502: RegistryError,
    503: RegistryError,
    504: PluginTimeout,
}
_BY_EXIT_CODE: dict[int, type[SynapseError]] = {
    1: SynapseError,
    2: UsageError,
    3: InvalidError,
    4: SignatureError,
    5: PluginTimeout,
    6: ResourceLimitExceeded,
    7: PluginFailed,
    8: SandboxError,
    9: RegistryError,
}


def status_for(exc: SynapseError) -> WireStatus:
    """The gRPC code and HTTP status ``exc`` is answered with (see the module's table)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            if isinstance(exc, ResourceLimitExceeded) and exc.limit in PAYLOAD_LIMITS:
                return TOO_LARGE
            return status
    raise TypeError(f"not a SynapseError: {exc!r}")  # pragma: no cover - the last row matches every one


def error_json(exc: SynapseError) -> dict[str, Any]:
    """What travels with an error: ``to_json()`` plus the class name, so the client can rebuild it."""
    out = exc.to_json()
    out["class"] = type(exc).__name__
    return out


def problem_details(exc: SynapseError, status: WireStatus, *, instance: str | None = None) -> dict[str, Any]:
    """The RFC 9457 problem details object (``application/problem+json``) of ``exc``.

    ``type`` is ``urn:synapse-nb:problem:<code>`` (the error's machine-readable code), ``title`` the HTTP
    status's phrase, ``detail`` the one-line message, ``instance`` the request path; the extension member
    ``error`` is the error's JSON (``code``, ``exit_code``, ``message``, ``plugin``, ``class`` and the class's
    attributes such as ``pointer`` or ``limit``), exactly as ``synapse-cli ... --json`` prints it.
    """
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + exc.code,
        "title": status.title,
        "status": status.http,
        "detail": str(exc),
    }
    if instance is not None:
        body["instance"] = instance
    body["error"] = error_json(exc)
    return body


def _class_named(name: Any) -> type[SynapseError] | None:
    if isinstance(name, str) and name in _errors.__all__:
        cls = getattr(_errors, name, None)
        if isinstance(cls, type) and issubclass(cls, SynapseError):
            return cls
    return None


def error_from_wire(
    data: Any, *, fallback: type[SynapseError] = SynapseError, message: str = "", plugin: str | None = None
) -> SynapseError:
    """Rebuild the error a server sent: the same class (from :mod:`synapse_nb.errors` only), attributes, code.

    ``data`` is the error's JSON (a dict, or JSON text); when it is missing or unusable, ``fallback`` is
    raised with ``message`` (the transport's status text), so that the exit code still says what happened.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return _build(fallback, {"message": message or "the server answered with an error", "plugin": plugin})
    cls = _class_named(data.get("class"))
    exit_code = data.get("exit_code")
    if cls is None or cls.exit_code != exit_code:
        cls = _BY_EXIT_CODE.get(exit_code, fallback) if isinstance(exit_code, int) else fallback
    return _build(cls, data)


def _build(cls: type[SynapseError], data: dict[str, Any]) -> SynapseError:
    """``cls(message, **the attributes its constructor takes that ``data`` has)``; the base class if that fails."""
    kwargs: dict[str, Any] = {}
    params = inspect.signature(cls).parameters
    for name in params:
        if name in ("message", "self"):
            continue
        if name == "problems" and isinstance(data.get("problems"), list):
            kwargs["problems"] = [_problem(p) for p in data["problems"] if isinstance(p, dict)]
        elif name == "timeout_ms" and isinstance(data.get("value"), str) and data["value"].endswith("ms"):
            kwargs["timeout_ms"] = int(data["value"][:-2]) if data["value"][:-2].isdigit() else 0
        elif name == "details" and isinstance(data.get("details"), list):
            kwargs["details"] = [str(d) for d in data["details"]]
        elif name in data and name not in ("details", "problems"):
            kwargs[name] = data[name]
    if "limit" in params and "limit" not in kwargs:
        kwargs["limit"] = "unknown"
    try:
        return cls(str(data["message"]), **kwargs)
    except (TypeError, ValueError):
        base = _BY_EXIT_CODE.get(cls.exit_code, SynapseError)
        return base(str(data["message"]), plugin=kwargs.get("plugin"))


def _problem(data: dict[str, Any]) -> Problem:
    def opt_int(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) else None

    pointer = data.get("pointer")
    return Problem(
        str(data.get("file", "")),
        str(data.get("message", "")),
        line=opt_int("line"),
        col=opt_int("col"),
        pointer=pointer if isinstance(pointer, str) else None,
    )
