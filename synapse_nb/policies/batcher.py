"""Dynamic batching (anchors: TorchServe's batch_size/max_batch_delay, Ray Serve's @serve.batch, Triton's dynamic
batcher): concurrent requests to one plugin become one ``execute_batch(items)`` of at most ``max_batch_size``.

Requests queue in arrival order. Whoever finds nobody leading becomes the **leader**: it waits until
``max_batch_size`` requests are queued or ``max_delay_ms`` has passed since the oldest one arrived, takes up to
``max_batch_size`` of them (for one endpoint), runs them as one batch, hands every request its own outcome,
and passes the lead to the next queued request. A caller in a thread leads in its own thread (no hand-off when
it is alone: with ``max_delay_ms: 0`` a lone call costs a lock and an append); async requests (jobs, event
deliveries) are led by one background thread. While one batch runs, the next one fills, so batches grow with the
load even at ``max_delay_ms: 0``. Every request gets exactly one outcome, its own: a result, its item's error,
or the batch's error (a crash fails the batch's requests; an ``ItemError`` fails only its item).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import PluginCrashed, PluginTimeout, SynapseError

if TYPE_CHECKING:
    from typing import TypeAlias

    from ..invocation import Execution

    Outcome: TypeAlias = Execution | SynapseError
    RunBatch: TypeAlias = Callable[[list["Request"]], list[Outcome]]

__all__ = ["Batcher", "Request"]

_LEAD = object()  # the outcome slot of a request that is handed the lead
WAIT_MARGIN_S = 30.0  # a waiting caller's safety net beyond its deadline (a leader always answers before)


class Request:
    """One queued request: its encoded payload, endpoint and deadline; its outcome once the batch ran."""

    __slots__ = ("arrived", "body", "callback", "deadline", "endpoint", "event", "outcome", "probe")

    def __init__(
        self,
        body: bytes,
        endpoint: str | None,
        deadline: float | None,
        probe: str = "",
        *,
        callback: Callable[[Outcome], object] | None = None,
    ) -> None:
        self.body = body
        self.endpoint = endpoint
        self.deadline = deadline  # monotonic; None: the plugin's timeout from when its batch starts
        self.probe = probe  # the circuit's probe token, when this request is the half-open probe
        self.callback = callback  # async requests; sync ones wait on `event`
        self.event: threading.Event | None = None
        self.outcome: Any = None
        self.arrived = 0.0  # set when queued


class Batcher:
    """The queue and the leader of one plugin's dynamic batches."""

    def __init__(self, plugin: str, run: RunBatch, *, max_batch_size: int, max_delay_ms: int) -> None:
        self.plugin = plugin
        self._run = run  # runs one batch (one or more requests of one endpoint): one outcome per request
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)  # the collecting leader waits here for more requests
        self._turn = threading.Condition(self._lock)  # the background leader waits here for async requests
        self._queue: collections.deque[Request] = collections.deque()
        self._leading = False
        self._collecting = False
        self._background = False  # the background thread holds the lead
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.items = 0

    # -- entry points ------------------------------------------------------------------------------------------
    def call(self, request: Request) -> Execution:
        """Queue ``request`` and wait for its outcome (leading a batch when it is this caller's turn)."""
        event = None
        with self._lock:
            if self._closed:
                raise PluginCrashed("plugin has been torn down; no more calls", plugin=self.plugin)
            lead = not self._leading
            if lead:
                self._leading = True
                if self.max_delay <= 0:  # alone, and no waiting for company: its batch of one runs at once
                    return self._alone(request)
            else:
                event = request.event = threading.Event()  # only a request that waits needs one
                if self._collecting:
                    self._filled.notify()
            request.arrived = time.monotonic()
            self._queue.append(request)
        if event is not None:
            wait = None if request.deadline is None else request.deadline - time.monotonic() + WAIT_MARGIN_S
            if not event.wait(wait):
                with self._lock:
                    if request.outcome is None and request in self._queue:
                        self._queue.remove(request)
                        raise PluginTimeout("no batch picked this request up before its deadline", plugin=self.plugin)
                event.wait()  # its batch is answering it (or handing it the lead) right now
            lead = request.outcome is _LEAD
        if lead:
            self._lead()
        outcome = request.outcome
        if isinstance(outcome, SynapseError):
            raise outcome
        if outcome is None or outcome is _LEAD:  # pragma: no cover - every request gets an outcome
            raise PluginCrashed("a batched request got no outcome", plugin=self.plugin)
        result: Execution = outcome
        return result

    def _alone(self, request: Request) -> Execution:
        """The lock is held and the lead just taken, with nobody queued: run ``request`` by itself (the lone-call
        path, as cheap as calling the runner), then pass the lead to whoever queued meanwhile."""
        self._lock.release()
        try:
            outcome = self._run([request])[0]
        except BaseException as exc:
            outcome = (
                exc if isinstance(exc, SynapseError) else PluginCrashed(f"call failed: {exc!r}", plugin=self.plugin)
            )
            if not isinstance(exc, Exception):
                raise
        finally:
            self.batches += 1
            self.items += 1
            self._lock.acquire()  # held again for the caller's `with`, which releases it
            self._hand_on()
        if isinstance(outcome, SynapseError):
            raise outcome
        return outcome

    def submit(self, request: Request) -> None:
        """Queue an async ``request``; its ``callback`` gets the outcome (in the leader's thread)."""
        with self._lock:
            self._admit(request)
            if not self._leading:
                self._leading = True
                self._give_background_the_lead()
            elif self._collecting:
                self._filled.notify()

    def _admit(self, request: Request) -> None:
        if self._closed:
            raise PluginCrashed("plugin has been torn down; no more calls", plugin=self.plugin)
        request.arrived = time.monotonic()
        self._queue.append(request)

    def close(self) -> None:
        """No more requests; the queued ones still run."""
        with self._lock:
            self._closed = True
            self._turn.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- leading -----------------------------------------------------------------------------------------------
    def _give_background_the_lead(self) -> None:
        """With the lock held: the background thread leads the next batch."""
        self._background = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._background_loop, name=f"synapse-batch-{self.plugin}",
                                            daemon=True)  # fmt: skip
            self._thread.start()
        self._turn.notify()

    def _background_loop(self) -> None:
        while True:
            with self._lock:
                while not self._background and not self._closed:
                    self._turn.wait()
                if not self._background:
                    return
                self._background = False
            self._lead()

    def _take(self) -> list[Request]:
        """With the lock held: wait for the batch to fill (at most max_delay after its oldest request), then take
        up to max_batch_size requests of the first one's endpoint (the others keep their places)."""
        queue = self._queue
        if self.max_delay > 0 and len(queue) < self.max_batch_size:
            self._collecting = True
            until = queue[0].arrived + self.max_delay
            while len(queue) < self.max_batch_size:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._filled.wait(left)
            self._collecting = False
        endpoint = queue[0].endpoint
        if all(r.endpoint == endpoint for r in queue) or len(queue) == 1:
            n = min(len(queue), self.max_batch_size)
            return [queue.popleft() for _ in range(n)]
        batch: list[Request] = []
        kept: collections.deque[Request] = collections.deque()
        while queue and len(batch) < self.max_batch_size:
            request = queue.popleft()
            (batch if request.endpoint == endpoint else kept).append(request)
        queue.extendleft(reversed(kept))
        return batch

    def _lead(self) -> None:
        """Run one batch, answer its requests, pass the lead on."""
        with self._lock:
            batch = self._take()
        outcomes: list[Outcome] = []
        try:
            outcomes = self._run(batch)
        except BaseException as exc:
            error = (
                exc if isinstance(exc, SynapseError) else PluginCrashed(f"batch failed: {exc!r}", plugin=self.plugin)
            )
            outcomes = [error] * len(batch)
            if not isinstance(exc, Exception):
                raise
        finally:
            if len(outcomes) != len(batch):
                wrong = PluginCrashed("a batch returned the wrong number of outcomes", plugin=self.plugin)
                outcomes = [wrong] * len(batch)
            self.batches += 1
            self.items += len(batch)
            self._answer(batch, outcomes)
            self._pass_lead()

    def _failure(self, exc: BaseException) -> SynapseError:
        """What the requests of a batch get when running it raised (never nothing)."""
        return exc if isinstance(exc, SynapseError) else PluginCrashed(f"batch failed: {exc!r}", plugin=self.plugin)

    def _answer(self, batch: list[Request], outcomes: list[Outcome]) -> None:
        for request, outcome in zip(batch, outcomes, strict=True):
            request.outcome = outcome
            if request.callback is not None:
                with contextlib.suppress(Exception):  # a callback's failure must not keep the others waiting
                    request.callback(outcome)
            elif request.event is not None:
                request.event.set()

    def _pass_lead(self) -> None:
        with self._lock:
            self._hand_on()

    def _hand_on(self) -> None:
        """With the lock held: the lead goes to the first queued request (or to nobody)."""
        if not self._queue:
            self._leading = False
            return
        successor = self._queue[0]
        if successor.event is not None:
            successor.outcome = _LEAD
            successor.event.set()
        else:
            self._give_background_the_lead()
