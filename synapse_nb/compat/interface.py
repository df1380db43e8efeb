"""The interface beside the schemas: endpoints, protocols, trigger, event topics and permissions, compared.

Removing an endpoint or an interface, or changing a protocol, the trigger or an event topic breaks callers:
major. Adding one is minor. Narrowing ``permissions`` is minor; widening them (a new domain, more memory, a
GPU, a secret, a longer timeout) is minor too, but is always shown as "asks for more", because users must see
a plugin asking for more than it had. Everything else in the manifest (description, tags, batch and cache
policies, the entrypoint) is a patch-level change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..manifest.model import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS
from ..units import format_duration_ms, parse_duration_ms
from .keywords import same, show
from .model import Bump, Change, Effect

__all__ = ["MANIFEST_DISPLAY", "diff_interface"]

MANIFEST_DISPLAY = "manifest.yaml"
_COMPARED_SPEC = {"interfaces", "execution", "events", "permissions", "secrets", "runtime"}
_IGNORED_METADATA = {"name", "version"}


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _endpoints(manifest: dict[str, Any]) -> dict[str, tuple[int, str, str, str]]:
    """endpoint name -> (interface index, interface type, protocol, path)."""
    found: dict[str, tuple[int, str, str, str]] = {}
    interfaces = _get(manifest, "spec", "interfaces")
    for i, iface in enumerate(interfaces if isinstance(interfaces, list) else []):
        if not isinstance(iface, dict):
            continue
        for name, path in (iface.get("endpoints") or {}).items():
            found.setdefault(name, (i, str(iface.get("type")), str(iface.get("protocol")), str(path)))
    return found


def _interfaces(manifest: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """interface type -> (index, protocol) (the first interface of each type)."""
    found: dict[str, tuple[int, str]] = {}
    interfaces = _get(manifest, "spec", "interfaces")
    for i, iface in enumerate(interfaces if isinstance(interfaces, list) else []):
        if isinstance(iface, dict):
            found.setdefault(str(iface.get("type")), (i, str(iface.get("protocol"))))
    return found


def _covered(domain: str, granted: list[str]) -> bool:
    """Whether an entry of ``granted`` already allows everything ``domain`` allows."""
    from ..sandbox.allowlist import DEFAULT_PORTS, AllowEntry, EgressDenied

    try:
        new = AllowEntry.parse(domain)
        olds = [AllowEntry.parse(d) for d in granted]
    except EgressDenied:
        return domain in granted
    for old in olds:
        exact = not new.wildcard and new.name == old.name
        names = new.name.endswith("." + old.name) if old.wildcard else exact
        ports = old.port == new.port or (old.port is None and new.port in DEFAULT_PORTS)
        if names and ports:
            return True
    return False


class _Report:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def add(
        self,
        rule: str,
        bump: Bump,
        effect: Effect,
        message: str,
        pointer: str,
        side: str = "new",
        *,
        more: str | None = None,
    ) -> None:
        self.changes.append(
            Change(
                rule=rule,
                direction="interface",
                effect=effect,
                bump=bump,
                message=message,
                file=MANIFEST_DISPLAY,
                pointer=pointer,
                side="old" if side == "old" else "new",
                asks_for_more=more,
            )
        )


def diff_interface(
    old: dict[str, Any], new: dict[str, Any], *, line_of: Callable[[str, str], int | None] | None = None
) -> list[Change]:
    """Every interface and permission change between two manifests (their raw, validated documents).

    ``line_of(side, pointer)`` locates a pointer in the old or new ``manifest.yaml`` (lines are left out without).
    """
    r = _Report()
    name_o, name_n = _get(old, "metadata", "name"), _get(new, "metadata", "name")
    if name_o != name_n:
        r.add("plugin-renamed", "major", "change", f"the plugin is renamed {name_o!r} -> {name_n!r}", "/metadata/name")
    _interfaces_and_endpoints(r, old, new)
    _execution(r, old, new)
    _topics(r, old, new)
    _permissions(r, old, new)
    _rest(r, old, new)
    if line_of is None:
        return r.changes
    return [c.located(line_of(c.side, c.pointer)) for c in r.changes]


def _interfaces_and_endpoints(r: _Report, old: dict[str, Any], new: dict[str, Any]) -> None:
    io_, in_ = _interfaces(old), _interfaces(new)
    for kind, (i, protocol) in io_.items():
        if kind not in in_:
            r.add(
                "interface-removed",
                "major",
                "change",
                f"interface {kind!r} ({protocol}) removed",
                f"/spec/interfaces/{i}",
                "old",
            )
        elif in_[kind][1] != protocol:
            j, now = in_[kind]
            r.add(
                "interface-protocol-changed",
                "major",
                "change",
                f"interface {kind!r} protocol {protocol} -> {now}",
                f"/spec/interfaces/{j}/protocol",
            )
    for kind, (j, protocol) in in_.items():
        if kind not in io_:
            r.add(
                "interface-added",
                "minor",
                "additive",
                f"interface {kind!r} ({protocol}) added",
                f"/spec/interfaces/{j}",
            )
    eo, en = _endpoints(old), _endpoints(new)
    for name, (i, kind, protocol, path) in eo.items():
        pointer = f"/spec/interfaces/{i}/endpoints/{name}"
        if name not in en:
            if kind in in_:  # a removed interface was reported once, not endpoint by endpoint
                r.add("endpoint-removed", "major", "change", f"endpoint {name!r} ({path}) removed", pointer, "old")
            continue
        j, kind_n, protocol_n, path_n = en[name]
        if path_n != path:
            r.add(
                "endpoint-path-changed",
                "major",
                "change",
                f"endpoint {name!r} path {path} -> {path_n}",
                f"/spec/interfaces/{j}/endpoints/{name}",
            )
        elif protocol_n != protocol and kind_n != kind:
            r.add(
                "endpoint-protocol-changed",
                "major",
                "change",
                f"endpoint {name!r} moved from {protocol} to {protocol_n}",
                f"/spec/interfaces/{j}/endpoints/{name}",
            )
    for name, (j, kind_n, _protocol, path) in en.items():
        if name not in eo and kind_n in io_:
            r.add(
                "endpoint-added",
                "minor",
                "additive",
                f"endpoint {name!r} ({path}) added",
                f"/spec/interfaces/{j}/endpoints/{name}",
            )


def _execution(r: _Report, old: dict[str, Any], new: dict[str, Any]) -> None:
    to = _get(old, "spec", "execution", "trigger") or "sync"
    tn = _get(new, "spec", "execution", "trigger") or "sync"
    if to != tn:
        r.add("trigger-changed", "major", "change", f"trigger {to} -> {tn}", "/spec/execution/trigger")
    ms_o, ms_n = _timeout_ms(old), _timeout_ms(new)
    if ms_o != ms_n:
        text = f"timeout {format_duration_ms(ms_o)} -> {format_duration_ms(ms_n)}"
        if ms_n > ms_o:
            r.add("timeout-increased", "minor", "widen", text, "/spec/execution/timeout", more=text)
        else:
            r.add("timeout-decreased", "minor", "narrow", text, "/spec/execution/timeout")
    ro, rn = _runtime_minor(old), _runtime_minor(new)
    if ro != rn:
        text = f"runtime {_get(old, 'spec', 'runtime')} -> {_get(new, 'spec', 'runtime')}"
        if rn > ro:
            r.add(
                "runtime-raised",
                "minor",
                "narrow",
                f"{text} (hosts with an older Python cannot run it)",
                "/spec/runtime",
            )
        else:
            r.add("runtime-lowered", "patch", "annotation", text, "/spec/runtime")


def _timeout_ms(manifest: dict[str, Any]) -> int:
    text = _get(manifest, "spec", "execution", "timeout")
    try:
        return parse_duration_ms(text) if isinstance(text, str) else DEFAULT_TIMEOUT_MS
    except ValueError:
        return DEFAULT_TIMEOUT_MS


def _runtime_minor(manifest: dict[str, Any]) -> int:
    text = str(_get(manifest, "spec", "runtime") or "python3")
    _, _, minor = text.partition(".")
    return int(minor) if minor.isdigit() else 0


def _topics(r: _Report, old: dict[str, Any], new: dict[str, Any]) -> None:
    to = [t for t in _get(old, "spec", "events", "topics") or [] if isinstance(t, str)]
    tn = [t for t in _get(new, "spec", "events", "topics") or [] if isinstance(t, str)]
    for i, topic in enumerate(to):
        if topic not in tn:
            r.add(
                "event-topic-removed",
                "major",
                "change",
                f"event topic {topic!r} removed",
                f"/spec/events/topics/{i}",
                "old",
            )
    for i, topic in enumerate(tn):
        if topic not in to:
            r.add("event-topic-added", "minor", "additive", f"event topic {topic!r} added", f"/spec/events/topics/{i}")


def _permissions(r: _Report, old: dict[str, Any], new: dict[str, Any]) -> None:
    base = "/spec/permissions"
    do = [d for d in _get(old, "spec", "permissions", "network_access", "domains") or [] if isinstance(d, str)]
    dn = [d for d in _get(new, "spec", "permissions", "network_access", "domains") or [] if isinstance(d, str)]
    for i, domain in enumerate(dn):
        if domain in do:
            continue
        pointer = f"{base}/network_access/domains/{i}"
        if _covered(domain, do):
            r.add(
                "permission-domain-rewritten",
                "patch",
                "annotation",
                f"network access to {domain!r} (already granted by another entry)",
                pointer,
            )
        else:
            r.add(
                "permission-domain-added",
                "minor",
                "widen",
                f"network access to {domain!r} added",
                pointer,
                more=f"network access to {domain}",
            )
    for i, domain in enumerate(do):
        if domain not in dn:
            r.add(
                "permission-domain-removed",
                "minor",
                "narrow",
                f"network access to {domain!r} removed",
                f"{base}/network_access/domains/{i}",
                "old",
            )
    mo = _get(old, "spec", "permissions", "system_resources", "memory_mb") or DEFAULT_MEMORY_MB
    mn = _get(new, "spec", "permissions", "system_resources", "memory_mb") or DEFAULT_MEMORY_MB
    if mo != mn:
        text = f"memory {mo} MiB -> {mn} MiB"
        pointer = f"{base}/system_resources/memory_mb"
        if mn > mo:
            r.add("permission-memory-increased", "minor", "widen", text, pointer, more=text)
        else:
            r.add("permission-memory-decreased", "minor", "narrow", text, pointer)
    go = _get(old, "spec", "permissions", "system_resources", "gpu") is True
    gn = _get(new, "spec", "permissions", "system_resources", "gpu") is True
    if gn and not go:
        r.add(
            "permission-gpu-requested", "minor", "widen", "asks for a GPU", f"{base}/system_resources/gpu", more="a GPU"
        )
    elif go and not gn:
        r.add("permission-gpu-dropped", "minor", "narrow", "no longer uses a GPU", f"{base}/system_resources/gpu")
    so = [s for s in _get(old, "spec", "secrets") or [] if isinstance(s, str)]
    sn = [s for s in _get(new, "spec", "secrets") or [] if isinstance(s, str)]
    for i, secret in enumerate(sn):
        if secret not in so:
            r.add(
                "permission-secret-added",
                "minor",
                "widen",
                f"secret {secret} added",
                f"/spec/secrets/{i}",
                more=f"the secret {secret}",
            )
    for i, secret in enumerate(so):
        if secret not in sn:
            r.add(
                "permission-secret-removed", "minor", "narrow", f"secret {secret} removed", f"/spec/secrets/{i}", "old"
            )


def _rest(r: _Report, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Every other manifest field: a patch-level change each (documentation, policies, the entrypoint)."""
    for section, skip in (("metadata", _IGNORED_METADATA), ("spec", _COMPARED_SPEC)):
        so, sn = _get(old, section) or {}, _get(new, section) or {}
        for key in sorted((so.keys() | sn.keys()) - skip):
            if key in so and key in sn and same(so[key], sn[key]):
                continue
            verb = "changed" if key in so and key in sn else ("added" if key in sn else "removed")
            value = f" ({show(sn[key], 40)})" if key in sn else ""
            r.add(
                "manifest-field-changed",
                "patch",
                "annotation",
                f"{section}.{key} {verb}{value}",
                f"/{section}/{key}",
                "new" if key in sn else "old",
            )
    eo, en = _get(old, "spec", "execution") or {}, _get(new, "spec", "execution") or {}
    for key in sorted((eo.keys() | en.keys()) - {"trigger", "timeout"}):
        if not (key in eo and key in en and same(eo[key], en[key])):
            r.add(
                "manifest-field-changed",
                "patch",
                "annotation",
                f"spec.execution.{key} changed",
                f"/spec/execution/{key}",
                "new" if key in en else "old",
            )
