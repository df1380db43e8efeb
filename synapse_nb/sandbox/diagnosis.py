"""Why a call failed: the evidence a dead worker or an error reply leaves, turned into the caller's error.

Pure functions, so each mapping is testable without a jail: a worker killed by the OOM killer is
``memory_mb`` exceeded (exit 6), forks refused at ``pids.max`` are ``pids_max`` (exit 6, even if memory ran out
too: the forks are the cause), a signal is a crash naming it (exit 7), an exit status is a crash with that
status, and a jail that never started is the sandbox's fault (exit 8) with nsjail's own words.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from ..errors import (
    HandlerError,
    InvalidError,
    PluginCrashed,
    PluginFailed,
    Problem,
    ResourceLimitExceeded,
    SandboxError,
    SynapseError,
    ValidationError,
)
from .launch import NO_CONFIG, PLACEMENT_FAILED
from .policy import SandboxPolicy

__all__ = ["Death", "death_error", "reply_error"]

ENOSPC, EFBIG = 28, 27
_SIGNALS = {s.value: s.name for s in signal.Signals}


@dataclass(frozen=True)
class Death:
    """What a dead worker left behind: its exit status, the cgroup counters and the last log lines."""

    when: str
    status: int | None
    oom_kills: int = 0
    pids_refused: int = 0
    stderr_tail: tuple[str, ...] | list[str] = ()
    jail_log_tail: tuple[str, ...] | list[str] = ()
    cgroups: bool = True


def death_error(plugin: str, policy: SandboxPolicy, death: Death) -> SynapseError:
    """The error the caller of a worker that died gets."""
    when, status = death.when, death.status
    details = list(death.stderr_tail)
    if death.pids_refused:  # a fork bomb often exhausts memory too; the forks are the cause
        also = f"; memory_mb={policy.memory_mb} was hit as well" if death.oom_kills else ""
        return ResourceLimitExceeded(
            f"process limit exceeded: pids_max={policy.pids_max} (forks or threads were refused {when}{also})",
            plugin=plugin,
            limit="pids_max",
            value=policy.pids_max,
            details=details,
        )
    if death.oom_kills:
        return ResourceLimitExceeded(
            f"memory limit exceeded: memory_mb={policy.memory_mb} (the kernel killed the worker {when})",
            plugin=plugin,
            limit="memory_mb",
            value=policy.memory_mb,
            details=details,
        )
    if status == PLACEMENT_FAILED and death.cgroups:
        return SandboxError("could not place the worker in its cgroups", plugin=plugin)
    if status == NO_CONFIG:
        return SandboxError("the worker launcher got no configuration", plugin=plugin)
    if status is not None and status > 128 and status - 128 in _SIGNALS:
        sig = _SIGNALS[status - 128]
        return PluginCrashed(
            f"worker crashed {when}: killed by {sig}", plugin=plugin, signal=sig, status=status, details=details
        )
    jail_log = list(death.jail_log_tail)
    if when == "while starting" and jail_log:
        return SandboxError(f"nsjail could not start the worker: {jail_log[-1]}", plugin=plugin, details=jail_log)
    return PluginCrashed(
        f"worker exited {when} with status {status}", plugin=plugin, status=status, details=details + jail_log
    )


def _problem(raw: dict[str, Any]) -> Problem:
    """A located problem from the guest, keeping only fields of the right type (the channel is untrusted)."""

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value[:2000] if isinstance(value, str) else None

    def number(key: str) -> int | None:
        value = raw.get(key)
        return value if type(value) is int else None

    return Problem(text("file") or "handler.py", text("message") or "problem", number("line"), number("col"),
                   text("pointer"))  # fmt: skip


def reply_error(
    plugin: str, policy: SandboxPolicy, reply: dict[str, Any], *, during: str, pids_refused: bool = False
) -> tuple[SynapseError, str | None]:
    """The error for a reply with ``ok: false``, and why the worker must be killed (None: it may serve on)."""
    error = reply.get("error") or {}
    kind = error.get("kind")
    logs = [line for line in (reply.get("stderr") or "").splitlines() if line.strip()][-5:]
    if pids_refused:
        return ResourceLimitExceeded(
            f"process limit exceeded: pids_max={policy.pids_max} (forks or threads were refused)",
            plugin=plugin,
            limit="pids_max",
            value=policy.pids_max,
        ), "process limit hit"
    if kind == "validation":
        return ValidationError(
            f"input rejected by the handler's validation: {error.get('pointer') or '/'}: {error.get('message')}",
            plugin=plugin,
            pointer=error.get("pointer") or "",
            schema=error.get("schema"),
            direction="input",
        ), None
    if kind == "synapse":
        problems = [_problem(p) for p in error.get("problems") or []]
        if error.get("code") == "limit":
            name = error.get("limit_name") or "limit"
            return ResourceLimitExceeded(str(error.get("message")), plugin=plugin, limit=name), None
        if error.get("code") == "invalid":
            cls = HandlerError if during == "activation" else InvalidError
            return cls(str(error.get("message")), plugin=plugin, problems=problems, details=error.get("details")), None
        return PluginFailed(str(error.get("message")), plugin=plugin, details=error.get("details")), None
    if kind in ("not_json", "state_not_json"):
        exc_type = "NotJSON" if kind == "not_json" else "StateNotJSON"
        return PluginFailed(str(error.get("message")), plugin=plugin, exc_type=exc_type, details=logs), None
    if kind == "state_too_large":
        return ResourceLimitExceeded(
            f"self.state is {error.get('size')} bytes after this call, over the max_state_bytes limit of "
            f"{error.get('limit')}; the worker restarts from the last checkpoint",
            plugin=plugin,
            limit="max_state_bytes",
            value=error.get("limit"),
        ), "state too large"
    if kind == "output_too_large":
        return ResourceLimitExceeded(
            f"output is {error.get('size')} bytes, over the max_output_bytes limit of {error.get('limit')}",
            plugin=plugin,
            limit="max_output_bytes",
            value=error.get("limit"),
        ), None
    errno = error.get("errno")
    if errno == ENOSPC:
        return ResourceLimitExceeded(
            f"disk limit exceeded: /tmp is full (tmp_mb={policy.tmp_mb})",
            plugin=plugin,
            limit="tmp_mb",
            value=policy.tmp_mb,
        ), "/tmp full"
    if errno == EFBIG:
        return ResourceLimitExceeded(
            f"file size limit exceeded: fsize_mb={policy.fsize_mb}",
            plugin=plugin,
            limit="fsize_mb",
            value=policy.fsize_mb,
        ), None
    location = error.get("location")
    where = f" ({location})" if location else ""
    prefix = "activation failed: " if during == "activation" else ""
    message = f"{prefix}{error.get('type', 'Error')}: {error.get('message', '')}{where}"
    tb = (error.get("traceback") or "").rstrip().splitlines()[-6:]
    return PluginFailed(message, plugin=plugin, exc_type=error.get("type"), location=location, details=tb), None
