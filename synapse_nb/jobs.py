"""Async execution: a :class:`Job` per submitted call, and a dispatcher that pipelines them to the worker.

``plugin.submit(payload)`` validates the input on the host at once (a bad payload raises there, not later)
and returns a :class:`Job`: ``await job`` in a running event loop (a notebook's), or ``job.result(timeout)``
from plain code. Each plugin has one dispatcher thread that takes every queued job and sends them to the worker
pipelined (:meth:`~synapse_nb.sandbox.worker.Worker.call_many`), so thousands in flight cost fewer round trips
than the same calls made one by one. A job the worker never reached because it died first is re-queued on
its replacement; every job gets exactly one outcome.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Generator
from typing import Any

from .errors import PluginCrashed, SynapseError
from .invocation import Execution

__all__ = ["Dispatcher", "Job"]

_ids = itertools.count(1)
MAX_PIPELINE = 256
MAX_REQUEUES = 3


class Job:
    """The handle of one submitted call."""

    __slots__ = ("_future", "id", "plugin", "requeued")

    def __init__(self, plugin: str) -> None:
        self.id = next(_ids)
        self.plugin = plugin
        self.requeued = 0
        self._future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def result(self, timeout: float | None = None) -> Any:
        """The validated result; raises the call's :class:`SynapseError`, or TimeoutError after ``timeout`` s."""
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"job {self.id} of {self.plugin!r} not finished after {timeout} s") from None

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._future.exception(timeout)

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, fn: Callable[[Job], object]) -> None:
        self._future.add_done_callback(lambda _future: fn(self))

    def __await__(self) -> Generator[Any, None, Any]:
        import asyncio

        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<Job {self.id} of {self.plugin!r} {state}>"

    # Used by the dispatcher only.
    def _resolve(self, value: Any = None, error: BaseException | None = None) -> None:
        if self._future.done():
            return
        if error is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(value)


RunMany = Callable[[list[bytes]], list[Execution | SynapseError | None]]
Finisher = Callable[[Execution], Any]
Failed = Callable[[SynapseError], None]


class Dispatcher:
    """One thread per plugin that drains the job queue into pipelined worker calls."""

    def __init__(self, plugin: str, run_many: RunMany, finish: Finisher, failed: Failed | None = None) -> None:
        self.plugin = plugin
        self._run_many = run_many
        self._finish = finish  # host-side output validation of one result
        self._failed = failed or (lambda _error: None)  # counts a job that failed before its output
        self._queue: collections.deque[tuple[Job, bytes]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, payload_json: bytes) -> Job:
        job = Job(self.plugin)
        with self._cond:
            if self._closed:
                raise PluginCrashed("plugin has been torn down; no more jobs", plugin=self.plugin)
            self._queue.append((job, payload_json))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"synapse-jobs-{self.plugin}", daemon=True)
                self._thread.start()
            self._cond.notify()
        return job

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(MAX_PIPELINE, len(self._queue)))]
            self._dispatch(batch)

    def _dispatch(self, batch: list[tuple[Job, bytes]]) -> None:
        try:
            results = self._run_many([payload for _job, payload in batch])
        except SynapseError as exc:  # the worker could not be started or reached: every job gets the error
            for job, _payload in batch:
                self._failed(exc)
                job._resolve(error=exc)
            return
        retry: list[tuple[Job, bytes]] = []
        for (job, payload), result in zip(batch, results, strict=True):
            if result is None:
                job.requeued += 1
                if job.requeued > MAX_REQUEUES:
                    died = PluginCrashed("the worker died repeatedly before running this job", plugin=self.plugin)
                    self._failed(died)
                    job._resolve(error=died)
                else:
                    retry.append((job, payload))
            elif isinstance(result, SynapseError):
                self._failed(result)
                job._resolve(error=result)
            else:
                try:
                    job._resolve(self._finish(result))
                except SynapseError as exc:
                    job._resolve(error=exc)
        if retry:
            with self._cond:
                self._queue.extendleft(reversed(retry))  # ahead of later jobs: keep submission order

    def close(self, *, wait: bool = True) -> None:
        """Stop accepting jobs; queued ones still run unless the worker is gone."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
