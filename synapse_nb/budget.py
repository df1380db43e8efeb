"""The time budget of host-side checks: a per-thread deadline and a cheap, periodic look at the clock.

Validating a plugin's input or output on the host is work on untrusted data, so it counts against the call's
time budget: :func:`within` runs a check with a deadline (a :func:`time.monotonic` value), and the checks call
:func:`tick` with the size of the work they are about to do (a container's length, one schema keyword). Every
:data:`TICK_UNITS` units the clock is read and :class:`DeadlineExceeded` is raised once the deadline has passed.

The margin (how far past its deadline a check can run) is the longest stretch of work between two ticks: a few
thousand container elements or schema keywords (well under a millisecond), one regex search (linear time, and
searches that could take longer than a few milliseconds run beside the caller, see :mod:`synapse_nb.linregex`),
or one comparison against an ``enum``/``const`` value (bounded by the schema's size). In practice a few
milliseconds; ``tests/test_hostile_inputs.py`` holds it under 50 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["TICK_UNITS", "DeadlineExceeded", "check", "current_deadline", "tick", "within"]

T = TypeVar("T")

#: Units of work between two looks at the clock (one unit: a container element or about a microsecond of work).
TICK_UNITS = 2048

_local = threading.local()
# One shared countdown for all threads: a race only moves a look at the clock a little earlier or later, and a
# shared list is cheaper than a thread-local lookup on the hot path. The deadline itself is per thread.
_left = [TICK_UNITS]


class DeadlineExceeded(Exception):
    """A check ran past the deadline of the call it belongs to (internal: callers turn it into PluginTimeout)."""


def current_deadline() -> float | None:
    """The deadline of the check running on this thread, or None when it has none."""
    deadline: float | None = getattr(_local, "deadline", None)
    return deadline


def check() -> None:
    """Raise :class:`DeadlineExceeded` if this thread's deadline has passed."""
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded


def tick(units: int = 1) -> None:
    """Account for ``units`` of work; every :data:`TICK_UNITS` units, :func:`check` the clock."""
    left = _left[0] - units
    if left > 0:
        _left[0] = left
        return
    _left[0] = TICK_UNITS
    check()


def within(deadline: float | None, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` with ``deadline`` as this thread's deadline (None: no deadline), restored afterwards."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        return fn(*args)
    finally:
        _local.deadline = previous
