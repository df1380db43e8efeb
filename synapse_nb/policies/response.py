"""Reading a handler's response metadata on the host: the TTL of one response, and a batch's per-item outcomes.

The worker channel has checked the shape already (:func:`synapse_nb.sandbox.channel.check_meta`); what is left
is what depends on the request: a call's metadata is ``{"cache_ttl_ms": N}``, a batch's has exactly one entry
per item. Anything else fails the call (exit 7), naming what was wrong; nothing here can fail otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import PluginFailed, SynapseError

if TYPE_CHECKING:
    from ..invocation import Execution

__all__ = ["handler_ttl", "item_outcomes"]


def handler_ttl(run: Execution, plugin: str) -> int | None:
    """The TTL the handler set for this response (``respond(..., cache_ttl=...)``), or None."""
    meta = run.meta
    if meta is None:
        return None
    ttl = meta.get("cache_ttl_ms") if type(meta) is dict else None
    if type(ttl) is not int or ttl < 0 or set(meta) != {"cache_ttl_ms"}:
        raise PluginFailed("response metadata of one call must be {'cache_ttl_ms': N}", plugin=plugin)
    return ttl


def item_outcomes(run: Execution, count: int, plugin: str) -> list[Execution | SynapseError]:
    """One outcome per item of a batch's execution: its own result (with its own TTL), or its ItemError."""
    raw = run.result
    if not isinstance(raw, list) or len(raw) != count:
        got = f"{len(raw)} results" if isinstance(raw, list) else type(raw).__name__
        error = PluginFailed(f"execute_batch must return a list of {count} results, got {got}", plugin=plugin)
        return [error] * count
    items: Any = None
    if run.meta is not None:
        items = run.meta.get("items") if type(run.meta) is dict else None
        if type(items) is not list or len(items) != count:
            error = PluginFailed(f"response metadata of a batch must have one entry per item ({count})", plugin=plugin)
            return [error] * count
    out: list[Execution | SynapseError] = []
    for i, value in enumerate(raw):
        entry = items[i] if items is not None else None
        first = i == 0  # the batch's logs and cold start are reported once, with its first item
        if entry is not None and "error" in entry:
            kind, message = str(entry["error"].get("type", "ItemError")), str(entry["error"].get("message", ""))
            out.append(PluginFailed(f"{kind}: {message}", plugin=plugin, exc_type=kind))
            continue
        out.append(
            replace(
                run, result=value, meta=entry, stdout=run.stdout if first else "", stderr=run.stderr if first else "",
                started=run.started if first else None, batch_size=count,
            )
        )  # fmt: skip
    return out
