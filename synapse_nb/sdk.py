"""The plugin SDK: subclass :class:`BaseHandler` in your plugin's ``handler.py``.

Handlers written as the SynapseEngine spec shows work unchanged::

    from synapse.sdk import BaseHandler          # or: from synapse_nb.sdk import BaseHandler

    class CustomProcessor(BaseHandler):
        def validate_input(self, payload):
            return self.validate_with_schema('input_schema.json', payload)

        async def execute(self, validated_data):
            return {"result": [len(validated_data["text"])]}

``synapse.sdk`` is an alias that exists only on a plugin's own import path (inside its worker), never as an
installed top-level ``synapse`` package. This module imports only the standard library (plus jsonschema,
lazily, the first time a handler validates against a schema itself) so that workers start fast.
"""

from __future__ import annotations

import importlib.util
import sys
import types

from .errors import ValidationError  # re-exported: handlers may catch it

# Every import here is paid at each worker's cold start: no typing, dataclasses, logging or pathlib at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from .schemas import SchemaSet
    from .session import SessionStore

__all__ = [
    "MAX_CACHE_TTL_MS",
    "BaseHandler",
    "Context",
    "ItemError",
    "Response",
    "ValidationError",
    "install_synapse_alias",
]

#: The longest TTL a response may ask for: 30 days (memcached reads a longer relative expiry as a timestamp).
MAX_CACHE_TTL_MS = 30 * 24 * 3_600_000


def _ttl_ms(value: Any) -> int:
    """``cache_ttl`` of :meth:`BaseHandler.respond` in milliseconds: ``"60s"``/``"1m30s"``, or seconds."""
    if isinstance(value, str):
        from .units import parse_duration_ms

        try:
            ms = parse_duration_ms(value)
        except (ValueError, OverflowError):
            raise ValueError(
                f"respond(): cache_ttl={value[:40]!r} is not a duration (e.g. '60s', '5m', '1h')"
            ) from None
    elif type(value) in (int, float) and value == value:  # not bool, not NaN
        ms = round(value * 1000) if abs(value) < 1e12 else MAX_CACHE_TTL_MS + 1
    else:
        raise ValueError(
            f"respond(): cache_ttl must be a duration such as '60s' or seconds, not {type(value).__name__}"
        )
    if not 0 <= ms <= MAX_CACHE_TTL_MS:
        raise ValueError(f"respond(): cache_ttl={value!r} is outside 0 s .. 30 days")
    return ms


class Response:
    """A result with metadata beside it, made by :meth:`BaseHandler.respond`: the host validates ``result``
    against the output schema and reads ``cache_ttl_ms`` as this response's cache TTL (0: not cached)."""

    __slots__ = ("cache_ttl_ms", "result")

    def __init__(self, result: Any, *, cache_ttl_ms: int | None = None) -> None:
        if cache_ttl_ms is not None and (type(cache_ttl_ms) is not int or not 0 <= cache_ttl_ms <= MAX_CACHE_TTL_MS):
            raise ValueError(f"Response: cache_ttl_ms must be an integer from 0 to {MAX_CACHE_TTL_MS}")
        self.result = result
        self.cache_ttl_ms = cache_ttl_ms

    def __repr__(self) -> str:
        return f"Response({self.result!r}, cache_ttl_ms={self.cache_ttl_ms!r})"


class ItemError(Exception):
    """One failed item of a batch: return it in ``execute_batch``'s list, in the place of that item's result.

    Only the caller of that item gets the error (exit 7, ``plugin-failed``, with ``message``); the other items of
    the batch keep their results. Raising from ``execute_batch`` instead fails every item of the batch.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)


class _NoSession:
    """Used until a session backend is configured: every access says how to get one."""

    def _fail(self) -> Any:
        raise RuntimeError("no session store is configured for this plugin run")

    def get(self, key: str, default: Any = None) -> Any:
        return self._fail()

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._fail()

    def delete(self, key: str) -> None:
        self._fail()


class Context:
    """What a handler knows about the run it is part of; passed to :meth:`BaseHandler.setup`.

    ``plugin_dir`` is the plugin's folder (``/plugin`` inside the sandbox), ``isolation`` how it runs
    (``nsjail``, ``process`` or ``in-process``), ``endpoint`` the interface endpoint of the current call,
    ``secrets`` the host environment variables named in ``spec.secrets`` and ``session`` the session store.
    """

    def __init__(
        self,
        plugin: str,
        version: str,
        plugin_dir: str | Path,
        *,
        isolation: str = "in-process",
        endpoint: str | None = None,
        secrets: Mapping[str, str] | None = None,
        session: SessionStore | None = None,
    ) -> None:
        self.plugin = plugin
        self.version = version
        self._plugin_dir = str(plugin_dir)
        self.isolation = isolation
        self.endpoint = endpoint
        self.secrets: Mapping[str, str] = dict(secrets or {})
        self.session: SessionStore = session if session is not None else _NoSession()

    @property
    def plugin_dir(self) -> Path:
        from pathlib import Path  # imported on first use: most handlers never ask

        return Path(self._plugin_dir)

    @property
    def logger(self) -> logging.Logger:
        import logging

        return logging.getLogger(f"synapse_nb.plugin.{self.plugin}")

    def __repr__(self) -> str:
        return f"Context(plugin={self.plugin!r}, version={self.version!r}, isolation={self.isolation!r})"


class BaseHandler:
    """Base class of every plugin handler.

    Lifecycle: the runtime creates the handler once per worker, restores :attr:`state`, calls :meth:`setup`
    (do expensive initialisation here: load models, compile regexes), then for every call runs
    :meth:`validate_input` and :meth:`execute` (or :meth:`execute_batch` for a batch), and finally
    :meth:`teardown`, after which :attr:`state` is saved. Input and output are also validated against
    ``schemas/`` by the host, outside the sandbox; validation here is for the handler's own benefit.
    """

    #: JSON-serialisable state, restored at activation and saved at teardown and after each successful call.
    state: dict[str, Any]
    #: Set by the runtime before :meth:`setup`.
    context: Context
    # Runtime bookkeeping: the schemas once loaded, and the payload the host has already validated.
    _synapse_schemas: SchemaSet | None = None
    _synapse_prevalidated: tuple[str, Any] | None = None

    def __init__(self) -> None:
        self.state = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def setup(self, context: Context) -> None:
        """Ahead-of-time initialisation, run once per worker before the first call."""

    def validate_input(self, payload: Any) -> Any:
        """Check and normalise the payload; the default validates it against ``input_schema.json``."""
        return self.validate_with_schema("input_schema.json", payload)

    async def execute(self, validated_data: Any) -> Any:
        """Process one validated input and return a JSON-serialisable result. ``def`` works as well."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(self, validated_data)")

    async def execute_batch(self, items: list[Any]) -> list[Any]:
        """Process a list of validated inputs; the default calls :meth:`execute` on each, in order."""
        results = []
        for item in items:
            result = self.execute(item)
            if hasattr(result, "__await__"):
                result = await result
            results.append(result)
        return results

    def teardown(self) -> None:
        """Release resources; :attr:`state` is saved after this returns."""

    def respond(self, result: Any, *, cache_ttl: str | float | None = None) -> Response:
        """``result`` with its response metadata: ``return self.respond(result, cache_ttl="60s")``.

        ``cache_ttl`` is how long the host may serve this very response again for the same input (a duration
        such as ``"60s"`` or ``"1h"``, or seconds; ``0``: never; at most 30 days); without it, ``spec.cache.ttl``
        applies. Works in ``execute``, in endpoint methods and per item in ``execute_batch``.
        """
        return Response(result, cache_ttl_ms=None if cache_ttl is None else _ttl_ms(cache_ttl))

    # -- helpers -----------------------------------------------------------------------------------------------
    def validate_with_schema(self, name: str, payload: Any) -> Any:
        """Return ``payload`` if it matches ``schemas/<name>``; raise :class:`ValidationError` with its pointer."""
        # The runtime validated this very payload against input_schema.json on the host already; the host is
        # the trust anchor, so doing it again here would only cost time.
        marker = self._synapse_prevalidated
        if marker is not None and marker[0] == name and marker[1] is payload:
            return payload
        return self._synapse_schema_set().validate(name, payload)

    def _synapse_schema_set(self) -> SchemaSet:
        schemas = self._synapse_schemas
        if schemas is None:
            from .schemas import load_schemas

            plugin_dir = self.context.plugin_dir if hasattr(self, "context") else "."
            plugin = self.context.plugin if hasattr(self, "context") else None
            schemas = load_schemas(plugin_dir, plugin=plugin, required=(), display_root="")
            self._synapse_schemas = schemas
        return schemas


def install_synapse_alias() -> None:
    """Make ``import synapse.sdk`` resolve to this module, unless a real ``synapse`` package is importable.

    Called by the runtime in a plugin's own process before its handler is imported.
    """
    if "synapse" in sys.modules:
        return
    if importlib.util.find_spec("synapse") is not None:
        return
    package = types.ModuleType("synapse", "Alias of synapse_nb for handlers written against the spec's SDK.")
    package.__path__ = []
    package.sdk = sys.modules[__name__]  # type: ignore[attr-defined]
    sys.modules["synapse"] = package
    sys.modules["synapse.sdk"] = sys.modules[__name__]
