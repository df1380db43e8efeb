"""Errors on the wire: the exit-code -> gRPC/HTTP table, problem details, and rebuilding errors on the client."""

from __future__ import annotations

import pytest

from synapse_nb import errors
from synapse_nb.errors import Problem, SynapseError
from synapse_nb.serve.errors import (
    Malformed,
    MethodNotAllowed,
    NotServed,
    Unauthenticated,
    error_from_wire,
    error_json,
    problem_details,
    status_for,
)

EXAMPLES: list[tuple[SynapseError, str, int]] = [
    (errors.UsageError("bad flag"), "INVALID_ARGUMENT", 400),
    (errors.InvalidError("invalid"), "INVALID_ARGUMENT", 422),
    (errors.ManifestError("manifest.yaml:3: bad"), "INVALID_ARGUMENT", 422),
    (errors.SchemaError("schemas/input_schema.json: bad"), "INVALID_ARGUMENT", 422),
    (errors.RequirementsError("requirements.txt:1: bad"), "INVALID_ARGUMENT", 422),
    (errors.DependencyError("no numpy", requirement="numpy"), "INVALID_ARGUMENT", 422),
    (errors.HandlerError("handler.py: no class"), "INVALID_ARGUMENT", 422),
    (
        errors.ValidationError("input failed", plugin="p", pointer="/text", schema="input_schema.json"),
        "INVALID_ARGUMENT",
        422,
    ),
    (errors.SignatureError("tampered", plugin="p", reason="tampered"), "PERMISSION_DENIED", 403),
    (errors.PluginTimeout("timed out", plugin="p", timeout_ms=1500), "DEADLINE_EXCEEDED", 504),
    (
        errors.ResourceLimitExceeded("too big", plugin="p", limit="max_payload_bytes", value=10),
        "RESOURCE_EXHAUSTED",
        413,
    ),
    (errors.ResourceLimitExceeded("oom", plugin="p", limit="memory_mb", value=512), "RESOURCE_EXHAUSTED", 429),
    (errors.PluginFailed("raised", plugin="p", exc_type="ValueError", location="handler.py:3"), "INTERNAL", 500),
    (errors.PluginCrashed("died", plugin="p", signal="SIGKILL"), "ABORTED", 500),
    (errors.SandboxError("no nsjail", plugin="p"), "UNAVAILABLE", 503),
    (errors.CircuitOpen("open", plugin="p"), "UNAVAILABLE", 503),
    (errors.RegistryError("unreachable"), "UNAVAILABLE", 503),
    (SynapseError("a bug"), "INTERNAL", 500),
    (NotServed("no such endpoint"), "NOT_FOUND", 404),
    (Malformed("not JSON"), "INVALID_ARGUMENT", 400),
    (Unauthenticated("no token"), "UNAUTHENTICATED", 401),
    (MethodNotAllowed("GET"), "UNIMPLEMENTED", 405),
]


@pytest.mark.parametrize(("exc", "grpc_code", "http_status"), EXAMPLES, ids=lambda v: type(v).__name__)
def test_every_error_maps_to_its_grpc_code_and_http_status(exc: SynapseError, grpc_code: str, http_status: int) -> None:
    status = status_for(exc)
    assert (status.grpc, status.http) == (grpc_code, http_status)


def test_every_error_class_of_the_errors_module_has_a_row() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, SynapseError) and cls is not SynapseError:
            assert any(isinstance(e, cls) for e, _g, _h in EXAMPLES), name


@pytest.mark.parametrize(("exc", "grpc_code", "http_status"), EXAMPLES, ids=lambda v: type(v).__name__)
def test_an_error_is_rebuilt_as_the_same_class_with_the_same_attributes(
    exc: SynapseError, grpc_code: str, http_status: int
) -> None:
    rebuilt = error_from_wire(error_json(exc))
    expected = type(exc) if type(exc).__name__ in errors.__all__ else type(exc).__mro__[1]
    assert type(rebuilt) is expected
    assert rebuilt.exit_code == exc.exit_code
    assert str(rebuilt) == str(exc)
    assert rebuilt.to_json() == exc.to_json() or type(exc).__name__ not in errors.__all__


def test_problems_survive_the_wire() -> None:
    exc = errors.ManifestError.from_problems(
        [Problem("manifest.yaml", "bad name", line=3, col=9, pointer="/metadata/name"), Problem("manifest.yaml", "x")]
    )
    rebuilt = error_from_wire(error_json(exc))
    assert isinstance(rebuilt, errors.ManifestError)
    assert rebuilt.problems == exc.problems
    assert (rebuilt.line, rebuilt.pointer) == (3, "/metadata/name")


@pytest.mark.parametrize(
    "data",
    [None, "not json", {"message": 3}, {"no": "message"}, ["a"]],
    ids=["none", "text", "bad-message", "no-message", "list"],
)
def test_an_unusable_error_body_falls_back_to_the_status_class(data: object) -> None:
    rebuilt = error_from_wire(data, fallback=errors.PluginTimeout, message="Deadline Exceeded")
    assert type(rebuilt) is errors.PluginTimeout
    assert str(rebuilt) == "Deadline Exceeded"


def test_a_class_name_from_outside_the_errors_module_is_never_looked_up() -> None:
    data = {"class": "SystemExit", "message": "bye", "exit_code": 4, "code": "signature"}
    rebuilt = error_from_wire(data)
    assert type(rebuilt) is errors.SignatureError
    data = {"class": "PluginTimeout", "message": "lies", "exit_code": 9}
    assert type(error_from_wire(data)) is errors.RegistryError  # the class must agree with the exit code


def test_problem_details_follow_rfc_9457() -> None:
    exc = errors.ValidationError("input failed", plugin="p", pointer="/text", schema="input_schema.json")
    body = problem_details(exc, status_for(exc), instance="/v1/analyze")
    assert body["type"] == "urn:synapse-nb:problem:invalid"
    assert (body["title"], body["status"], body["instance"]) == ("Unprocessable Content", 422, "/v1/analyze")
    assert body["detail"] == "p: input failed"
    assert body["error"]["pointer"] == "/text"
    assert body["error"]["class"] == "ValidationError"
