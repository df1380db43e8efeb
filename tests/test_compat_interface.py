"""The interface beside the schemas: endpoints, protocols, trigger, topics and permissions."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from synapse_nb.compat.interface import diff_interface
from synapse_nb.compat.model import max_bump

BASE: dict[str, Any] = {
    "apiVersion": "synapse.io/v1",
    "kind": "AIPlugin",
    "metadata": {"name": "p", "version": "1.0.0", "description": "d"},
    "spec": {
        "runtime": "python3.10",
        "execution": {"trigger": "sync", "timeout": "2s"},
        "interfaces": [{"type": "nlp", "protocol": "grpc", "endpoints": {"primary": "/v1/a", "extra": "/v1/b"}}],
        "permissions": {
            "network_access": {"domains": ["api.example.com", "*.example.org"]},
            "system_resources": {"gpu": False, "memory_mb": 512},
        },
        "events": {"topics": ["orders.created"]},
    },
}


def edited(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    manifest = copy.deepcopy(BASE)
    edit(manifest)
    return manifest


def spec(m: dict[str, Any]) -> dict[str, Any]:
    return m["spec"]  # type: ignore[no-any-return]


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str, str | None]] = [
    (
        "endpoint removed",
        lambda m: spec(m)["interfaces"][0]["endpoints"].pop("extra"),
        "endpoint-removed",
        "major",
        None,
    ),
    (
        "endpoint added",
        lambda m: spec(m)["interfaces"][0]["endpoints"].update(more="/v1/c"),
        "endpoint-added",
        "minor",
        None,
    ),
    (
        "endpoint path changed",
        lambda m: spec(m)["interfaces"][0]["endpoints"].update(extra="/v2/b"),
        "endpoint-path-changed",
        "major",
        None,
    ),
    ("interface removed", lambda m: spec(m).update(interfaces=[]), "interface-removed", "major", None),
    (
        "interface added",
        lambda m: spec(m)["interfaces"].append({"type": "vision", "protocol": "http", "endpoints": {"see": "/v1/see"}}),
        "interface-added",
        "minor",
        None,
    ),
    (
        "protocol changed",
        lambda m: spec(m)["interfaces"][0].update(protocol="http"),
        "interface-protocol-changed",
        "major",
        None,
    ),
    ("trigger changed", lambda m: spec(m)["execution"].update(trigger="async"), "trigger-changed", "major", None),
    (
        "event topic removed",
        lambda m: spec(m).pop("events"),
        "event-topic-removed",
        "major",
        None,
    ),
    (
        "event topic added",
        lambda m: spec(m)["events"]["topics"].append("orders.deleted"),
        "event-topic-added",
        "minor",
        None,
    ),
    (
        "domain added",
        lambda m: spec(m)["permissions"]["network_access"]["domains"].append("api.other.com"),
        "permission-domain-added",
        "minor",
        "network access to api.other.com",
    ),
    (
        "domain removed",
        lambda m: spec(m)["permissions"]["network_access"]["domains"].pop(0),
        "permission-domain-removed",
        "minor",
        None,
    ),
    (
        "more memory",
        lambda m: spec(m)["permissions"]["system_resources"].update(memory_mb=2048),
        "permission-memory-increased",
        "minor",
        "memory 512 MiB -> 2048 MiB",
    ),
    (
        "less memory",
        lambda m: spec(m)["permissions"]["system_resources"].update(memory_mb=256),
        "permission-memory-decreased",
        "minor",
        None,
    ),
    (
        "gpu",
        lambda m: spec(m)["permissions"]["system_resources"].update(gpu=True),
        "permission-gpu-requested",
        "minor",
        "a GPU",
    ),
    ("secret", lambda m: spec(m).update(secrets=["API_KEY"]), "permission-secret-added", "minor", "the secret API_KEY"),
    (
        "longer timeout",
        lambda m: spec(m)["execution"].update(timeout="30s"),
        "timeout-increased",
        "minor",
        "timeout 2s -> 30s",
    ),
    ("newer runtime", lambda m: spec(m).update(runtime="python3.12"), "runtime-raised", "minor", None),
    (
        "description",
        lambda m: m["metadata"].update(description="better words"),
        "manifest-field-changed",
        "patch",
        None,
    ),
    ("renamed", lambda m: m["metadata"].update(name="q"), "plugin-renamed", "major", None),
]


@pytest.mark.parametrize(("case", "edit", "rule", "bump", "more"), CASES, ids=[c[0] for c in CASES])
def test_each_interface_change_needs_its_bump(
    case: str, edit: Callable[[dict[str, Any]], None], rule: str, bump: str, more: str | None
) -> None:
    found = diff_interface(BASE, edited(edit))
    assert [c.rule for c in found] == [rule], [str(c) for c in found]
    assert max_bump(c.bump for c in found) == bump
    assert found[0].asks_for_more == more


def test_a_domain_already_covered_by_a_wildcard_is_not_asking_for_more() -> None:
    found = diff_interface(
        BASE, edited(lambda m: spec(m)["permissions"]["network_access"]["domains"].append("api.example.org"))
    )
    assert [(c.rule, c.bump, c.asks_for_more) for c in found] == [("permission-domain-rewritten", "patch", None)]


def test_changes_are_located_in_the_manifest_of_their_side() -> None:
    lines = {("old", "/spec/interfaces/0/endpoints/extra"): 12, ("new", "/spec/execution/trigger"): 7}
    found = diff_interface(
        BASE,
        edited(
            lambda m: (spec(m)["interfaces"][0]["endpoints"].pop("extra"), spec(m)["execution"].update(trigger="event"))
        ),
        line_of=lambda side, pointer: lines.get((side, pointer)),
    )
    assert sorted((c.rule, c.side, c.line) for c in found) == [
        ("endpoint-removed", "old", 12),
        ("trigger-changed", "new", 7),
    ]
