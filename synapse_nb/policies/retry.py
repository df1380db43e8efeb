"""Retries, only where they are safe: exponential backoff with jitter, bounded attempts and total time.

A call is retried only when running it twice cannot do harm: the plugin declares ``spec.execution.idempotent:
true``, or the call carries an idempotency key (its outcome is recorded once, whatever the attempts). And only
after a failure that says nothing about the input: the worker crashed (or broke the protocol and was killed), or
the call timed out. A handler that raised, invalid input or output, a resource limit: never retried.
"""

from __future__ import annotations

import random
import time

from ..errors import PluginCrashed, PluginTimeout
from .settings import RetrySettings

__all__ = ["Retry", "retryable"]


def retryable(error: BaseException) -> bool:
    """A crash (or protocol violation) or a timeout."""
    return isinstance(error, (PluginCrashed, PluginTimeout))


class Retry:
    """The schedule of one call's attempts."""

    def __init__(self, settings: RetrySettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.attempts = 1  # the first attempt is under way
        self._rng = rng or random.Random()

    def next_delay(self, error: BaseException, *, deadline: float | None = None) -> float | None:
        """Seconds to wait before the next attempt after ``error``, or None: do not retry (not retryable, no
        attempts left, or it would start after ``max_total`` or the caller's ``deadline``)."""
        settings = self.settings
        if not retryable(error) or self.attempts >= settings.attempts:
            return None
        base = min(settings.max_backoff_ms, settings.backoff_ms * (2 ** (self.attempts - 1))) / 1000
        delay = self._rng.uniform(base / 2, base)  # "equal jitter": never less than half the backoff
        start_at = time.monotonic() + delay
        if start_at - self.started > settings.max_total_ms / 1000:
            return None
        if deadline is not None and start_at >= deadline:
            return None
        self.attempts += 1
        return delay
