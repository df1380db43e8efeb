"""The in-process debug mode: a plugin run in the calling process, for breakpoints and ``%debug``.

Clearly *unsandboxed* (``isolation == "in-process (unsandboxed)"``): the handler shares the caller's memory,
files and network. It exists so that ``breakpoint()`` and post-mortem debugging work while prototyping, and it
is only ever used when asked for (``load(path, debug=True)``, ``%synapse load --debug``). The activation
pipeline still snapshots, verifies (waivable with the same explicit flag as everywhere) and validates the
folder statically; the handler then runs from the folder itself, so that tracebacks and breakpoints point at
your files. Every call goes through the same :class:`~synapse_nb.invocation.Pipeline` as a sandboxed one, so
the host-side checks and results are identical.
"""

from __future__ import annotations

from pathlib import Path

from .activation import ActivationOptions, allowed_secrets, initial_state, prepare
from .plugin import Plugin
from .runners import IN_PROCESS, InProcessRunner
from .state.base import SessionNamespace, SessionQuota, StateStore
from .state.checkpoint import Checkpointer

__all__ = ["ISOLATION", "InProcessPlugin", "load_in_process"]

ISOLATION = IN_PROCESS


class InProcessPlugin(Plugin):
    """A :class:`~synapse_nb.plugin.Plugin` whose runner is this process (debug mode)."""


def load_in_process(
    path: str | Path,
    options: ActivationOptions | None = None,
    *,
    store: StateStore | None = None,
    isolation: str = IN_PROCESS,
    run_from: Path | None = None,
) -> InProcessPlugin:
    """Activate ``path`` in this process: snapshot, verify, validate (statically), then import the handler
    from the folder (``run_from``, default the folder itself) and run its ``setup``."""
    options = options or ActivationOptions()
    plan = prepare(path, options)
    policy = plan.policy
    secrets, _refused = allowed_secrets(plan.manifest, plan.config)
    checkpointer = None
    session = None
    if store is not None:
        checkpointer = Checkpointer(store, plan.state_key, str(plan.manifest.version))
        sessions = plan.config.sessions
        session = SessionNamespace(store, plan.state_key, SessionQuota(sessions.max_keys, sessions.max_bytes,
                                                                       sessions.default_ttl_s))  # fmt: skip
    runner = InProcessRunner(
        (run_from or Path(path)).resolve(),
        plugin=plan.name, version=str(plan.manifest.version), entrypoint=plan.manifest.execution.entrypoint,
        secrets=secrets, state=initial_state(plan, options), isolation=isolation,
        max_output_bytes=policy.max_output_bytes, max_state_bytes=policy.max_state_bytes, session=session,
        on_state=checkpointer.save if checkpointer is not None else None,
    )  # fmt: skip
    plugin = InProcessPlugin(plan, runner, store=store)
    plugin.checkpointer = checkpointer
    plugin.activate()
    return plugin
