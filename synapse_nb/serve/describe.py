"""What a running server tells its user: the routes per listener and a ``grpcurl``/``curl`` line to copy.

Used by ``synapse-cli serve`` (printed once listening) and ``%synapse serve`` (shown in the notebook).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from ..schemas import INPUT_SCHEMA
from .routing import Route
from .service import PluginService

__all__ = ["example_commands", "example_payload", "route_lines"]

_EXAMPLES = {"string": "hello", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}


def example_payload(schema: Any, depth: int = 0) -> Any:
    """A small payload shaped like ``schema`` (its first ``examples`` entry when it has one)."""
    if not isinstance(schema, dict) or depth > 4:
        return {}
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        return {
            name: example_payload(properties.get(name, {}), depth + 1) for name in required if isinstance(name, str)
        }
    if isinstance(kind, str) and kind in _EXAMPLES:
        return _EXAMPLES[kind]
    return {}


def route_lines(service: PluginService, urls: dict[str, str]) -> list[str]:
    """One line per route and listener: ``grpc  /v1/analyze -> sentiment-analyzer primary``."""
    lines = []
    for route in service.routes.routes:
        for over in route.served_over:
            if over not in urls:
                continue
            if over == "http":
                lines.append(f"  http  POST {route.path} -> {route.plugin} {route.key}")
            elif route.grpc_method is not None:
                lines.append(f"  grpc  {route.path} -> {route.plugin} {route.key}")
            else:
                lines.append(
                    f"  grpc  synapse.v1.PluginHost/Invoke endpoint={route.key} -> {route.plugin} ({route.path})"
                )
    return lines


def _auth_header(token_hint: str | None) -> list[str]:
    return ["-H", f"authorization: Bearer {token_hint}"] if token_hint else []


def example_commands(service: PluginService, urls: dict[str, str], *, token_hint: str | None = None) -> list[str]:
    """A ``grpcurl`` and a ``curl`` command calling the first endpoint on each listener.

    ``token_hint`` is how the command should spell the token (``$(cat FILE)``, ``$SYNAPSE_TOKEN``), never
    the token itself.
    """
    commands = []
    for over in ("grpc", "http"):
        route = next((r for r in service.routes.routes if over in r.served_over), None)
        if route is None or over not in urls:
            continue
        payload = _payload_for(service, route)
        hostport = urls[over].split("://", 1)[1]
        if over == "grpc":
            if route.grpc_method is not None:
                body, method = payload, route.path.lstrip("/")
            else:
                body = {"plugin": route.plugin, "endpoint": route.key, "payload": payload}
                method = "synapse.v1.PluginHost/Invoke"
            argv = ["grpcurl", "-plaintext", *_auth_header(token_hint), "-d", json.dumps(body), hostport, method]
        else:
            argv = ["curl", "-sS", *_auth_header(token_hint), "-H", "content-type: application/json",
                    "-d", json.dumps(payload), urls[over] + route.path]  # fmt: skip
        commands.append(" ".join(_quote(arg) for arg in argv))
    return commands


def _quote(arg: str) -> str:
    if arg.startswith("authorization: Bearer $"):
        return f'"{arg}"'  # let the shell expand the token reference
    return shlex.quote(arg)


def _payload_for(service: PluginService, route: Route) -> Any:
    record = service.manager.plugins.get(route.plugin)
    schemas = record.folder.schemas.schemas if record is not None and record.folder is not None else {}
    return example_payload(schemas.get(INPUT_SCHEMA, {}))
