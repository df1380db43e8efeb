"""The in-process debug mode: a plugin run in the calling process, for breakpoints and ``%debug``.

Clearly *unsandboxed* (``isolation == "in-process (unsandboxed)"``): the handler shares the caller's memory,
files and network. It exists so that ``breakpoint()`` and post-mortem debugging work while prototyping; the
host-side checks (JSON only, input and output schemas, size caps) are the very ones the jailed runner
applies and the handler runs through the same :class:`~synapse_nb.runtime.HandlerHost`, so results are
identical. When the caller's thread already runs an event loop (a notebook), calls run on a helper thread
that has its own loop; exceptions still arrive here with their traceback.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .anatomy import PluginFolder, validate_folder
from .errors import PluginFailed, SynapseError
from .payloads import check_result_json, encode_payload, validate_input, validate_output
from .plugin import Invocation
from .runtime import HandlerHost, describe_exception
from .sdk import Context

__all__ = ["InProcessPlugin"]

ISOLATION = "in-process (unsandboxed)"


def _loop_running() -> bool:
    try:
        import asyncio

        asyncio.get_running_loop()
    except (ImportError, RuntimeError):
        return False
    return True


class InProcessPlugin:
    """A plugin loaded into this process. ``run``/``run_batch`` apply every host-side check."""

    isolation = ISOLATION

    def __init__(self, folder: str | Path, *, state: dict[str, Any] | None = None) -> None:
        checked: PluginFolder = validate_folder(folder, check_import=False)
        self.folder = checked
        self.manifest = checked.manifest
        self.name = self.manifest.name
        self.path = checked.path.resolve()
        self.listeners: list[Callable[[InProcessPlugin, str, dict[str, Any]], None]] = []
        self.calls = 0
        self.errors = 0
        m = self.manifest
        secrets = {name: os.environ[name] for name in m.secrets if name in os.environ}
        context = Context(
            plugin=m.name, version=str(m.version), plugin_dir=self.path, isolation=self.isolation, secrets=secrets
        )
        self._host = HandlerHost(self.path, context, entrypoint=m.execution.entrypoint)
        # One thread for every call when a loop is running here: the handler's own loop must not nest in it.
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        module = "synapse_plugin_" + m.name.replace("-", "_")
        t0 = time.perf_counter()
        self._guard(lambda: self._host.start(state, module_name=module))
        self.cold_start_ms = (time.perf_counter() - t0) * 1000
        self._stopped = False

    def _in_own_thread(self, fn: Callable[[], Any]) -> Any:
        if self._thread is None and not _loop_running():
            return fn()
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"synapse-debug-{self.name}")
        return self._thread.submit(fn).result()

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return self._in_own_thread(fn)
        except SynapseError as exc:
            exc.plugin = exc.plugin or self.name
            raise
        except Exception as exc:
            info = describe_exception(exc, self.path)
            where = f" ({info['location']})" if info["location"] else ""
            raise PluginFailed(
                f"{info['type']}: {info['message']}{where}",
                plugin=self.name,
                exc_type=info["type"],
                location=info["location"],
                details=info["traceback"].splitlines()[-6:],
            ) from exc

    def _roundtrip(self, payload: Any) -> Any:
        return json.loads(encode_payload(payload, plugin=self.name))

    def _notify(self, ms: float, error: SynapseError | None) -> None:
        if error is None:
            self.calls += 1
        else:
            self.errors += 1
        for listener in list(self.listeners):
            listener(self, "call", {"ms": ms, "error": error})

    def invoke(self, payload: Any, *, endpoint: str | None = None) -> Invocation:
        """Validate ``payload``, execute in this process, validate the result; with metadata."""
        t0 = time.perf_counter()
        try:
            data = validate_input(self.folder.schemas, self._roundtrip(payload))
            result = self._guard(lambda: self._host.call(data, endpoint=endpoint, prevalidated=True))
            value = validate_output(self.folder.schemas, json.loads(check_result_json(result, plugin=self.name)))
        except SynapseError as exc:
            self._notify((time.perf_counter() - t0) * 1000, exc)
            raise
        ms = (time.perf_counter() - t0) * 1000
        self._notify(ms, None)
        meta = {
            "plugin": self.name,
            "version": str(self.manifest.version),
            "isolation": self.isolation,
            "duration_ms": round(ms, 3),
            "signed": False,
        }
        return Invocation(value, meta)

    def run(self, payload: Any, *, endpoint: str | None = None) -> Any:
        """Validate ``payload``, execute, and return the validated result."""
        return self.invoke(payload, endpoint=endpoint).result

    def run_batch(self, items: list[Any], *, endpoint: str | None = None) -> list[Any]:
        """Validate every item, execute them as one batch, validate every result."""
        data = [validate_input(self.folder.schemas, self._roundtrip(item)) for item in items]
        results = self._guard(lambda: self._host.call_batch(data, endpoint=endpoint, prevalidated=True))
        decoded = json.loads(check_result_json(results, plugin=self.name))
        return [validate_output(self.folder.schemas, r) for r in decoded]

    @property
    def state(self) -> dict[str, Any]:
        return self._host.state()

    def teardown(self) -> dict[str, Any]:
        """Run the handler's teardown once; returns the final state."""
        if self._stopped:
            return {}
        self._stopped = True
        try:
            state: dict[str, Any] = self._guard(self._host.stop)
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
        return state

    def __enter__(self) -> InProcessPlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()
