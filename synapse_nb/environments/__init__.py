"""Dependency environments for plugins: ``requirements.txt`` resolved into a read-only environment for the jail.

``resolve_environment(requirements, plugin=...)`` returns an :class:`Environment`: the kernel's own
(``kernel``: reused read-only when it already satisfies every requirement, the fast path for notebook
prototyping) or one built with pip inside nsjail and cached under ``SYNAPSE_HOME/envs/<key>``.

Modules: ``kernel`` (does the kernel satisfy the requirements), ``resolve`` (which environment), ``cache``
(the store: keys, atomic commits, locks, gc), ``build`` (staging, fetching, recording), ``installer`` (the
jailed pip and its errors), ``progress`` (events and the terminal display).
"""

from __future__ import annotations

from .cache import EnvironmentRecord, EnvironmentStore, GcReport, environment_key
from .progress import ProgressCallback, ProgressEvent, terminal_progress
from .resolve import Environment, lookup_environment, plan_environment, resolve_environment

__all__ = [
    "Environment",
    "EnvironmentRecord",
    "EnvironmentStore",
    "GcReport",
    "ProgressCallback",
    "ProgressEvent",
    "environment_key",
    "lookup_environment",
    "plan_environment",
    "resolve_environment",
    "terminal_progress",
]
