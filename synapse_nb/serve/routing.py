"""Which endpoint of which plugin each gRPC method and HTTP path reaches: the route table of a server.

Every endpoint of ``spec.interfaces[].endpoints`` becomes a :class:`Route`: its key names the handler method
(``primary`` -> ``execute``, see ARCHITECTURE.md "Endpoint routing"), its path is what clients call. Where it
is reachable depends on the interface's protocol:

- ``grpc``: over the gRPC listener, through ``synapse.v1.PluginHost/Invoke`` and, when the path is a valid
  gRPC method path (``/SERVICE/METHOD``, see :func:`grpc_method`), as that method itself;
- ``http``: over the HTTP listener, as ``POST PATH``;
- ``local``: in-process only, unless the server is asked to expose local interfaces (``--expose-local``,
  which ``%synapse serve`` always passes): then over both listeners, as above.

Two routes claiming the same path on the same listener, or a path that collides with the server's own
(``/healthz``, ``/v1/plugins``, the ``synapse.v1``/``grpc.*`` services), are refused when the table is built,
naming both owners. Pure: no I/O, no gRPC import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import UsageError
from ..manifest import Manifest
from .errors import NotServed

__all__ = [
    "BATCH_SUFFIX",
    "RESERVED_GRPC_SERVICES",
    "RESERVED_HTTP_PATHS",
    "Route",
    "RouteTable",
    "grpc_method",
    "served_listeners",
]

# The listeners an interface of each protocol is served over (``local`` only when exposed explicitly).
SERVED_OVER = {"grpc": ("grpc",), "http": ("http",), "local": ("grpc", "http")}
RESERVED_HTTP_PATHS = frozenset({"/healthz", "/v1/plugins"})
RESERVED_GRPC_SERVICES = frozenset(
    {"synapse.v1.PluginHost", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
     "grpc.reflection.v1.ServerReflection"}
)  # fmt: skip
# ``POST PATH:batch`` runs a JSON array as one execute_batch (the HTTP twin of PluginHost/InvokeBatch).
BATCH_SUFFIX = ":batch"

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_GRPC_PATH = re.compile(rf"^/({_IDENT}(?:\.{_IDENT})*)/({_IDENT})$")


def grpc_method(path: str) -> tuple[str, str] | None:
    """``(service, method)`` when ``path`` is a valid gRPC method path, else None.

    A gRPC method path is ``/SERVICE/METHOD``: SERVICE a dot-separated protobuf full name (``v1``,
    ``acme.nlp.Sentiment``), METHOD a protobuf identifier (``analyze``). ``/v1/analyze`` is the method
    ``analyze`` of the service ``v1``; ``/v1/nlp/analyze`` or ``/v1/analyze-text`` are not method paths.
    """
    match = _GRPC_PATH.match(path)
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class Route:
    """One endpoint of one plugin, as served."""

    plugin: str
    key: str
    path: str
    protocol: str
    interface_type: str
    served_over: tuple[str, ...]

    @property
    def grpc_method(self) -> tuple[str, str] | None:
        return grpc_method(self.path) if "grpc" in self.served_over else None


@dataclass
class RouteTable:
    """Every route of the served plugins, indexed the ways the transports look them up."""

    routes: list[Route] = field(default_factory=list)
    grpc_paths: dict[str, Route] = field(default_factory=dict)
    http_paths: dict[str, Route] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, manifests: Mapping[str, Manifest], *, expose_local: bool = False) -> RouteTable:
        """The table for ``manifests`` (served name -> manifest); UsageError naming both owners of a path."""
        table = cls()
        for name, manifest in manifests.items():
            for interface in manifest.interfaces:
                over = SERVED_OVER[interface.protocol] if interface.protocol != "local" or expose_local else ()
                for key, path in interface.endpoints.items():
                    table._add(Route(name, key, path, interface.protocol, interface.type, over))
            if not any(r.plugin == name and r.served_over for r in table.routes):
                table.notes.append(
                    f"{name}: declares only protocol: local interfaces, which are not exposed "
                    "(pass --expose-local to serve them over gRPC and HTTP)"
                )
        return table

    def _add(self, route: Route) -> None:
        self.routes.append(route)
        where = f"{route.plugin}'s endpoint {route.key!r} ({route.path})"
        if "http" in route.served_over:
            if route.path in RESERVED_HTTP_PATHS:
                raise UsageError(f"{where}: POST {route.path} is reserved by the server (/healthz, /v1/plugins)")
            # PATH and PATH:batch belong together: no other route may take either.
            clashes = (route.path, route.path + BATCH_SUFFIX, route.path.removesuffix(BATCH_SUFFIX))
            other = next((self.http_paths[p] for p in clashes if p in self.http_paths), None)
            if other is not None:
                raise UsageError(f"{where}: HTTP path {other.path} is already served for {_owner(other)}")
            self.http_paths[route.path] = route
        if "grpc" in route.served_over:
            method = grpc_method(route.path)
            if method is None:
                self.notes.append(
                    f"{where} is not a gRPC method path (/SERVICE/METHOD); call it through "
                    f"synapse.v1.PluginHost/Invoke with endpoint {route.key!r}"
                )
                return
            if method[0] in RESERVED_GRPC_SERVICES:
                raise UsageError(f"{where}: service {method[0]} is reserved by the server")
            other = self.grpc_paths.get(route.path)
            if other is not None:
                raise UsageError(f"{where}: gRPC method {route.path} is already served for {_owner(other)}")
            self.grpc_paths[route.path] = route

    def plugins(self) -> list[str]:
        """Served plugin names, in the order they were given."""
        return list(dict.fromkeys(r.plugin for r in self.routes))

    def resolve(self, plugin: str, endpoint: str, *, over: str) -> Route:
        """The route ``PluginHost/Invoke`` (or a client) means by ``plugin`` and ``endpoint`` (key or path).

        An empty ``plugin`` means the only served plugin; an empty ``endpoint`` the plugin's first endpoint
        reachable ``over`` that listener. :class:`NotServed` says what is served instead.
        """
        names = self.plugins()
        if not plugin:
            if len(names) != 1:
                raise NotServed(f"this server serves {len(names)} plugins ({', '.join(names)}): name one")
            plugin = names[0]
        candidates = [r for r in self.routes if r.plugin == plugin]
        if not candidates:
            raise NotServed(f"plugin {plugin!r} is not served here (served: {', '.join(names) or 'none'})")
        reachable = [r for r in candidates if over in r.served_over]
        chosen = reachable if not endpoint else [r for r in reachable if endpoint in (r.key, r.path)]
        if chosen:
            return chosen[0]
        if endpoint and any(endpoint in (r.key, r.path) for r in candidates):
            route = next(r for r in candidates if endpoint in (r.key, r.path))
            listeners = " and ".join(route.served_over) or "no listener (protocol: local, not exposed)"
            raise NotServed(f"{plugin}: endpoint {endpoint!r} is served over {listeners}, not {over}")
        known = ", ".join(f"{r.key} ({r.path})" for r in reachable) or f"none over {over}"
        what = f"no endpoint {endpoint!r}" if endpoint else "no endpoint"
        raise NotServed(f"{plugin}: {what} is served over {over} (have: {known})")


def _owner(route: Route) -> str:
    return f"{route.plugin}'s endpoint {route.key!r}"


def served_listeners(routes: Iterable[Route]) -> set[str]:
    """The listeners (``grpc``, ``http``) some route needs."""
    return {over for route in routes for over in route.served_over}
