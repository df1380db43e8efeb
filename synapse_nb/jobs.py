"""Async execution: a :class:`Job` per submitted call, and a dispatcher that pipelines them to the worker.

``plugin.submit(payload)`` validates the input on the host at once (a bad payload raises there, not later)
and returns a :class:`Job`: ``await job`` in a running event loop (a notebook's), or ``job.result(timeout)``
from plain code. Each plugin has one dispatcher thread that takes every queued job and sends them to the worker
pipelined (:meth:`~synapse_nb.sandbox.worker.Worker.call_many`), so thousands in flight cost fewer round trips
than the same calls made one by one. A job the worker never reached because it died first is re-queued on
its replacement; every job gets exactly one outcome.

Jobs go through the same execution policies as calls (:class:`Jobs`): a cache hit resolves the job at once, an
open circuit refuses it at once, and with ``spec.batch`` queued jobs are coalesced into ``execute_batch``
calls by the plugin's dynamic batcher instead of being pipelined one by one. A job with an idempotency key runs
the whole call (and waits for a duplicate's outcome) on its own thread.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from .errors import PluginCrashed, SynapseError
from .invocation import Execution
from .policies.batcher import Request

if TYPE_CHECKING:
    from .invocation import Pipeline
    from .policies import Call

__all__ = ["Dispatcher", "Job", "Jobs"]

_ids = itertools.count(1)
MAX_PIPELINE = 256
MAX_REQUEUES = 3


class Job:
    """The handle of one submitted call."""

    __slots__ = ("_future", "body", "call", "id", "plugin", "requeued")

    def __init__(self, plugin: str, body: bytes = b"", call: Call | None = None) -> None:
        self.id = next(_ids)
        self.plugin = plugin
        self.requeued = 0
        self.body = body  # the validated, encoded payload
        self.call = call  # what the execution policies know about it
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
Settle = Callable[[Job, Execution | SynapseError], None]


class Dispatcher:
    """One thread per plugin that drains the job queue into pipelined worker calls."""

    def __init__(self, plugin: str, run_many: RunMany, settle: Settle) -> None:
        self.plugin = plugin
        self._run_many = run_many
        self._settle = settle  # the host-side steps after a job ran (or failed): resolves (or re-queues) it
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._closed:
                raise PluginCrashed("plugin has been torn down; no more jobs", plugin=self.plugin)
            self._queue.append(job)
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

    def _dispatch(self, batch: list[Job]) -> None:
        try:
            results = self._run_many([job.body for job in batch])
        except SynapseError as exc:  # the worker could not be started or reached: every job gets the error
            for job in batch:
                self._settle(job, exc)
            return
        retry: list[Job] = []
        for job, result in zip(batch, results, strict=True):
            if result is None:
                job.requeued += 1
                if job.requeued > MAX_REQUEUES:
                    self._settle(job, PluginCrashed("the worker died repeatedly before running this job",
                                                    plugin=self.plugin))  # fmt: skip
                else:
                    retry.append(job)
            else:
                self._settle(job, result)
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


class Jobs:
    """The async calls of one plugin, through its pipeline and policies."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._dispatcher: Dispatcher | None = None
        self._threads: list[threading.Thread] = []

    def submit(self, payload: Any, *, cache: bool = True, idempotency_key: str | None = None) -> Job:
        """Validate ``payload`` now (raising at once) and queue it; the job resolves with its outcome."""
        pipeline = self.pipeline
        if idempotency_key is not None:
            pipeline.encode(payload)
            job = Job(pipeline.name)
            thread = threading.Thread(target=self._keyed, args=(job, payload, cache, idempotency_key),
                                      name=f"synapse-job-{job.id}", daemon=True)  # fmt: skip
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
            return job
        body, call, answered = pipeline.prepare_job(payload, cache=cache)
        job = Job(pipeline.name, body, call)
        if answered is not None:
            job._resolve(answered.result)
            return job
        call.retry = pipeline.policies.retry_for(call)
        self._dispatch(job)
        return job

    def _keyed(self, job: Job, payload: Any, cache: bool, key: str) -> None:
        try:
            job._resolve(self.pipeline.invoke(payload, cache=cache, idempotency_key=key).result)
        except SynapseError as exc:
            job._resolve(error=exc)
        except Exception as exc:  # never leave a job without an outcome
            job._resolve(error=PluginCrashed(f"internal error: {exc!r}", plugin=self.pipeline.name))

    def _dispatch(self, job: Job) -> None:
        chain = self.pipeline.policies
        call = job.call
        if chain.batcher is not None and call is not None:
            chain.submit(Request(job.body, None, None, probe=call.probe,
                                 callback=lambda outcome: self._settle(job, outcome, recorded=True)))  # fmt: skip
            return
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(self.pipeline.name, self.pipeline.runner.execute_many, self._settle)
        self._dispatcher.submit(job)

    def _settle(self, job: Job, outcome: Execution | SynapseError, recorded: bool = False) -> None:
        call = job.call
        if call is None:  # pragma: no cover - every dispatched job has its call
            job._resolve(error=PluginCrashed("a job without its call", plugin=self.pipeline.name))
            return
        chain = self.pipeline.policies
        if isinstance(outcome, SynapseError) and call.retry is not None:
            delay = call.retry.next_delay(outcome)
            if delay is not None:
                if not recorded:
                    chain.circuit.record(outcome, call.probe)
                timer = threading.Timer(delay, self._again, args=(job,))
                timer.daemon = True
                timer.start()
                return
        try:
            result = self.pipeline.settle_job(call, outcome, recorded=recorded)
        except SynapseError as exc:
            job._resolve(error=exc)
            return
        job._resolve(result)

    def _again(self, job: Job) -> None:
        """A retried job: the circuit is asked again (an open one fails the job), then it is queued again."""
        call = job.call
        if call is None:  # pragma: no cover
            return
        try:
            call.probe = self.pipeline.policies.circuit.check()
            self._dispatch(job)
        except SynapseError as exc:
            self._settle(job, exc, recorded=True)

    def close(self) -> None:
        """No more jobs; queued ones still run."""
        if self._dispatcher is not None:
            self._dispatcher.close()
        for thread in self._threads:
            thread.join()
