"""Running a handler: import handler.py, find its class, drive setup/execute/teardown.

This is the code that runs *next to the plugin*: inside the jailed worker (see ``sandbox/guest.py``) and, in
the in-process debug mode, in the caller's own process. Both use the same :class:`HandlerHost`, so a result is
the same whichever way it was obtained. Standard library only (the guest imports it).
"""

from __future__ import annotations

import os
import sys
import types
from importlib.machinery import ModuleSpec, SourceFileLoader

from .errors import HandlerError, PluginFailed, Problem
from .sdk import BaseHandler, Context, install_synapse_alias

# asyncio, inspect, traceback, pathlib and typing are imported only when needed: the guest imports this
# module at every cold start, and asyncio alone would add ~35 ms to it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine
    from pathlib import Path
    from typing import Any

__all__ = [
    "RESERVED_METHODS",
    "HandlerHost",
    "describe_exception",
    "find_handler_classes",
    "load_handler_module",
    "split_entrypoint",
]

# BaseHandler's own methods: an endpoint key never routes to one of these (they are not endpoints).
RESERVED_METHODS = frozenset(
    {"setup", "teardown", "validate_input", "validate_with_schema", "execute_batch", "state", "context"}
)


def split_entrypoint(entrypoint: str | None) -> tuple[str, str | None]:
    """``handler.py:Class`` -> (``handler.py``, ``Class``); the default entry file when None."""
    entry_file, _, class_name = (entrypoint or "handler.py").partition(":")
    return entry_file or "handler.py", class_name or None


def load_handler_module(
    plugin_dir: str | Path, entry_file: str = "handler.py", *, module_name: str = "handler"
) -> types.ModuleType:
    """Import ``plugin_dir/entry_file`` as ``module_name`` with the plugin folder first on ``sys.path``."""
    install_synapse_alias()
    folder = str(plugin_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    path = os.path.join(folder, entry_file)
    loader = SourceFileLoader(module_name, path)
    module = types.ModuleType(module_name)
    module.__spec__ = ModuleSpec(module_name, loader, origin=path)
    module.__file__ = path
    module.__loader__ = loader
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def find_handler_classes(module: types.ModuleType) -> list[type[BaseHandler]]:
    """Handler classes *defined* in ``module`` (imported ones do not count), in source order."""
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseHandler)
        and obj is not BaseHandler
        and obj.__module__ == module.__name__
    ]

    if len(found) < 2:
        return found
    return sorted(found, key=lambda cls: _class_line(cls) or 0)


def _class_line(cls: type) -> int | None:
    import inspect

    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None


def select_handler_class(module: types.ModuleType, entry_file: str, class_name: str | None) -> type[BaseHandler]:
    """The single handler class, or the one named by ``spec.execution.entrypoint``; HandlerError otherwise."""
    if class_name is not None:
        obj = getattr(module, class_name, None)
        if obj is None:
            raise HandlerError.from_problems([Problem(entry_file, f"entrypoint class {class_name!r} is not defined")])
        if not (isinstance(obj, type) and issubclass(obj, BaseHandler)):
            raise HandlerError.from_problems(
                [
                    Problem(
                        entry_file,
                        f"entrypoint {class_name!r} is not a BaseHandler subclass",
                        _class_line(obj),
                    )
                ]
            )
        return obj
    classes = find_handler_classes(module)
    if not classes:
        raise HandlerError.from_problems(
            [
                Problem(
                    entry_file,
                    "defines no handler: add a class deriving from BaseHandler "
                    "(from synapse_nb.sdk import BaseHandler)",
                )
            ]
        )
    if len(classes) > 1:
        listed = ", ".join(f"{c.__name__} (line {_class_line(c)})" for c in classes)
        raise HandlerError.from_problems(
            [
                Problem(
                    entry_file,
                    f"defines {len(classes)} handler classes: {listed}; keep one, or name it in "
                    f"spec.execution.entrypoint ('{entry_file}:{classes[0].__name__}')",
                    _class_line(classes[1]),
                )
            ]
        )
    cls = classes[0]
    if cls.execute is BaseHandler.execute and cls.execute_batch is BaseHandler.execute_batch:
        raise HandlerError.from_problems(
            [
                Problem(
                    entry_file,
                    f"{cls.__name__} does not implement execute(self, validated_data)",
                    _class_line(cls),
                )
            ]
        )
    return cls


def describe_exception(exc: BaseException, plugin_dir: str | Path) -> dict[str, Any]:
    """Type, message, innermost location inside the plugin folder, and a short traceback of an exception."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    root = os.path.join(str(plugin_dir), "")
    location = None
    for frame in reversed(frames):
        if frame.filename.startswith(root):
            location = f"{frame.filename[len(root) :]}:{frame.lineno} in {frame.name}"
            break
    if isinstance(exc, SyntaxError) and exc.filename and str(exc.filename).startswith(root):
        location = f"{str(exc.filename)[len(root) :]}:{exc.lineno}"
    message = str(exc).splitlines()[0] if str(exc) else ""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "type": type(exc).__name__,
        "message": message[:2000],
        "location": location,
        "traceback": "".join(tb)[-8000:],
    }


def _call(method: Callable[..., Any], *args: Any) -> Any:
    """Call a lifecycle hook that a handler may have written as ``def`` or ``async def``."""
    return method(*args)


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Drive a coroutine that suspended on its first step (outside any loop) to the end, inside a loop."""
    import asyncio

    while True:
        if yielded is None:
            await asyncio.sleep(0)
        else:
            try:  # noqa: SIM105 - contextlib is not imported in the guest
                await yielded
            except BaseException:  # the coroutine observes the outcome itself when it resumes
                pass
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value


class HandlerHost:
    """One handler instance and the event loop its coroutines run on."""

    def __init__(self, plugin_dir: str | Path, context: Context, *, entrypoint: str | None = None) -> None:
        self.plugin_dir = str(plugin_dir)
        self.context = context
        self.entry_file, self.class_name = split_entrypoint(entrypoint)
        self.handler: BaseHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _await(self, value: Any) -> Any:
        """The value of a (possibly) awaitable result of a handler method.

        asyncio costs ~35 ms to import, a large part of a cold start. So while nothing in the plugin has
        imported asyncio, a coroutine is first stepped directly: one that never suspends (``async def`` that
        only awaits other coroutines, like the spec's example) completes without any event loop. Once asyncio
        is loaded (the handler imports it, or its source mentions it, see :meth:`load`), or a coroutine does
        suspend, coroutines run on this host's own event loop, created on first need.
        """
        if not hasattr(value, "__await__"):
            return value
        if "asyncio" not in sys.modules and hasattr(value, "send"):
            try:
                yielded = value.send(None)
            except StopIteration as stop:
                return stop.value
            return self._loop_run(_finish(value, yielded))
        return self._loop_run(value)

    def _loop_run(self, awaitable: Any) -> Any:
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def load(self, module_name: str = "handler") -> type[BaseHandler]:
        path = os.path.join(self.plugin_dir, self.entry_file)
        try:
            with open(path, "rb") as fh:
                mentions_asyncio = b"asyncio" in fh.read()
        except OSError:
            mentions_asyncio = False
        if mentions_asyncio:
            import asyncio  # noqa: F401 - a lazy `import asyncio` inside execute() must find a running loop
        module = load_handler_module(self.plugin_dir, self.entry_file, module_name=module_name)
        return select_handler_class(module, self.entry_file, self.class_name)

    def start(self, state: dict[str, Any] | None = None, *, module_name: str = "handler") -> None:
        """Import, instantiate, restore ``state`` and run ``setup``."""
        cls = self.load(module_name)
        handler = cls()
        handler.context = self.context
        if state:
            handler.state = dict(state)
        self._await(_call(handler.setup, self.context))
        self.handler = handler

    def _require(self) -> BaseHandler:
        if self.handler is None:
            raise PluginFailed("handler is not started")
        return self.handler

    def _method(self, handler: BaseHandler, endpoint: str | None) -> Any:
        """The method an endpoint key routes to: the handler's method of that name when it defines one (not a
        lifecycle method), else ``execute``. ``primary`` (or no endpoint) is ``execute``."""
        if endpoint and not endpoint.startswith("_") and endpoint not in RESERVED_METHODS:
            method = getattr(handler, endpoint, None)
            if callable(method):
                return method
        return handler.execute

    def call(self, payload: Any, *, endpoint: str | None = None, prevalidated: bool = False) -> Any:
        handler = self._require()
        self.context.endpoint = endpoint
        handler._synapse_prevalidated = ("input_schema.json", payload) if prevalidated else None
        try:
            validated = self._await(handler.validate_input(payload))
            return self._await(self._method(handler, endpoint)(validated))
        finally:
            handler._synapse_prevalidated = None

    def call_batch(self, items: list[Any], *, endpoint: str | None = None, prevalidated: bool = False) -> list[Any]:
        handler = self._require()
        self.context.endpoint = endpoint
        validated = []
        for item in items:
            handler._synapse_prevalidated = ("input_schema.json", item) if prevalidated else None
            validated.append(self._await(handler.validate_input(item)))
        handler._synapse_prevalidated = None
        method = self._method(handler, endpoint)
        if method == handler.execute:
            results = self._await(handler.execute_batch(validated))
        else:
            results = [self._await(method(item)) for item in validated]
        if not isinstance(results, list) or len(results) != len(items):
            got = f"{len(results)} results" if isinstance(results, list) else type(results).__name__
            raise PluginFailed(f"execute_batch must return a list of {len(items)} results, got {got}")
        return results

    def state(self) -> dict[str, Any]:
        return dict(self._require().state)

    def stop(self) -> dict[str, Any]:
        """Run ``teardown`` and return the state to save."""
        handler = self._require()
        try:
            self._await(_call(handler.teardown))
        finally:
            if self._loop is not None:
                self._loop.close()
                self._loop = None
        return dict(handler.state)
