"""The two :class:`~synapse_nb.invocation.Runner` implementations: a jailed warm worker, or this process.

:class:`SandboxRunner` sends each validated payload to the plugin's warm worker (the shared
:class:`~synapse_nb.sandbox.pool.WorkerSlot` of its exact file set), which checkpoints ``self.state`` after every
call that changed it and replaces a worker that died. :class:`InProcessRunner` runs the handler in the calling
process through the same :class:`~synapse_nb.runtime.HandlerHost` as the guest does, clearly *unsandboxed*: the
debug mode for breakpoints and ``%debug``, and the runner of the ``plugin`` fixture inside a jailed test session
(where the jail around the whole pytest session is the sandbox).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PluginFailed, ResourceLimitExceeded, SynapseError
from .invocation import Execution
from .payloads import check_result_json
from .runtime import HandlerHost, describe_exception
from .sandbox.pool import WorkerSlot, release_slot
from .sandbox.worker import CallResult, StartInfo, Worker
from .sdk import Context

if TYPE_CHECKING:
    from .session import SessionStore

__all__ = ["IN_PROCESS", "InProcessRunner", "SandboxRunner"]

IN_PROCESS = "in-process (unsandboxed)"


def _execution(call: CallResult, started: StartInfo | None) -> Execution:
    return Execution(
        result=call.result,
        handler_ms=call.handler_ms,
        queue_ms=call.queue_ms,
        total_ms=call.total_ms,
        stdout=call.stdout,
        stderr=call.stderr,
        started=started,
    )


class SandboxRunner:
    """Calls go to the warm worker of a slot; the last runner of a slot to close tears the worker down."""

    def __init__(self, slot: WorkerSlot) -> None:
        self.slot = slot
        self._closed = False

    @property
    def isolation(self) -> str:
        return self.slot.isolation

    @property
    def last_start(self) -> StartInfo | None:
        return self.slot.last_start

    @property
    def worker(self) -> Worker | None:
        return self.slot.current

    @property
    def stop_error(self) -> str | None:
        return self.slot.stop_error

    def start(self) -> StartInfo | None:
        return self.slot.worker()[1]

    def execute(self, body: bytes, *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        _worker, call, started = self.slot.run(lambda w: w.call(body, endpoint=endpoint, timeout_ms=timeout_ms))
        return _execution(call, started)

    def execute_batch(self, bodies: list[bytes], *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        _worker, call, started = self.slot.run(lambda w: w.call_batch(bodies, endpoint=endpoint, timeout_ms=timeout_ms))
        return _execution(call, started)

    def execute_many(self, bodies: list[bytes]) -> list[Execution | SynapseError | None]:
        _worker, results, started = self.slot.run_many(bodies)
        return [_execution(r, started) if isinstance(r, CallResult) else r for r in results]

    def state(self) -> dict[str, Any]:
        return dict(self.slot.state)

    def close(self) -> dict[str, Any]:
        if self._closed:
            return dict(self.slot.state)
        self._closed = True
        return release_slot(self.slot)


def _loop_running() -> bool:
    try:
        import asyncio

        asyncio.get_running_loop()
    except (ImportError, RuntimeError):
        return False
    return True


class InProcessRunner:
    """The handler in this process. When the caller's thread already runs an event loop (a notebook), calls run
    on a helper thread that has its own loop; exceptions still arrive here with their traceback."""

    def __init__(
        self,
        folder: Path,
        *,
        plugin: str,
        version: str,
        entrypoint: str | None,
        secrets: dict[str, str],
        state: dict[str, Any] | None = None,
        isolation: str = IN_PROCESS,
        max_output_bytes: int = 16 << 20,
        max_state_bytes: int = 8 << 20,
        session: SessionStore | None = None,
        on_state: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.folder = folder
        self.plugin = plugin
        self._isolation = isolation
        self.max_output_bytes = max_output_bytes
        self.max_state_bytes = max_state_bytes
        self.on_state = on_state
        context = Context(plugin=plugin, version=version, plugin_dir=folder, isolation=isolation, secrets=secrets,
                          session=session)  # fmt: skip
        self._host = HandlerHost(folder, context, entrypoint=entrypoint)
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._initial = state
        self._started: StartInfo | None = None
        self._last_state = json.dumps(state or {}, sort_keys=True)
        self._stopped = False
        self.stop_error: str | None = None

    @property
    def isolation(self) -> str:
        return self._isolation

    @property
    def last_start(self) -> StartInfo | None:
        return self._started

    @property
    def worker(self) -> Worker | None:
        return None

    def _in_own_thread(self, fn: Callable[[], Any]) -> Any:
        if self._thread is None and not _loop_running():
            return fn()
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"synapse-debug-{self.plugin}")
        return self._thread.submit(fn).result()

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return self._in_own_thread(fn)
        except SynapseError as exc:
            exc.plugin = exc.plugin or self.plugin
            raise
        except Exception as exc:
            info = describe_exception(exc, self.folder)
            where = f" ({info['location']})" if info["location"] else ""
            raise PluginFailed(
                f"{info['type']}: {info['message']}{where}",
                plugin=self.plugin,
                exc_type=info["type"],
                location=info["location"],
                details=info["traceback"].splitlines()[-6:],
            ) from exc

    def start(self) -> StartInfo | None:
        if self._started is not None:
            return None
        module = "synapse_plugin_" + self.plugin.replace("-", "_")
        t0 = time.perf_counter()
        self._guard(lambda: self._host.start(self._initial, module_name=module))
        ms = (time.perf_counter() - t0) * 1000
        handler = self._host.handler
        self._started = StartInfo(handler_class=type(handler).__name__ if handler else "?", cold_start_ms=ms,
                                  setup_ms=ms)  # fmt: skip
        return self._started

    def _checked_state(self) -> None:
        """The same rules as the guest's: ``self.state`` is a dict within ``max_state_bytes``; checkpointed."""
        handler = self._host.handler
        state = handler.state if handler is not None else {}
        if not isinstance(state, dict):
            raise PluginFailed(f"self.state must be a dict, not {type(state).__name__}", plugin=self.plugin)
        text = check_result_json(state, plugin=self.plugin, max_bytes=1 << 62).decode()
        if len(text) > self.max_state_bytes:
            raise ResourceLimitExceeded(
                f"self.state is {len(text)} bytes after this call, over the max_state_bytes limit of "
                f"{self.max_state_bytes}",
                plugin=self.plugin, limit="max_state_bytes", value=self.max_state_bytes,
            )  # fmt: skip
        if text != self._last_state:
            self._last_state = text
            if self.on_state is not None:
                self.on_state(json.loads(text))

    def _run(self, fn: Callable[[], Any]) -> Execution:
        started = self.start()
        t0 = time.perf_counter()
        value = self._guard(fn)
        ms = (time.perf_counter() - t0) * 1000
        result = json.loads(check_result_json(value, plugin=self.plugin, max_bytes=self.max_output_bytes))
        self._checked_state()
        return Execution(result=result, handler_ms=ms, queue_ms=0.0, total_ms=ms, started=started)

    def execute(self, body: bytes, *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        data = json.loads(body)
        return self._run(lambda: self._host.call(data, endpoint=endpoint, prevalidated=True))

    def execute_batch(self, bodies: list[bytes], *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        items = [json.loads(body) for body in bodies]
        return self._run(lambda: self._host.call_batch(items, endpoint=endpoint, prevalidated=True))

    def execute_many(self, bodies: list[bytes]) -> list[Execution | SynapseError | None]:
        out: list[Execution | SynapseError | None] = []
        for body in bodies:
            try:
                out.append(self.execute(body, endpoint=None, timeout_ms=None))
            except SynapseError as exc:
                out.append(exc)
        return out

    def state(self) -> dict[str, Any]:
        handler = self._host.handler
        return dict(handler.state) if handler is not None else dict(self._initial or {})

    def close(self) -> dict[str, Any]:
        """Run the handler's teardown once; returns the final state."""
        if self._stopped or self._started is None:
            self._stopped = True
            return self.state()
        self._stopped = True
        try:
            state: dict[str, Any] = self._guard(self._host.stop)
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
        return state
