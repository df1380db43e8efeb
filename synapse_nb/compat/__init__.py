"""Semantic versioning with enforced backward compatibility: the schema differ, verdicts and gates.

The parts, each its own module:

- :mod:`.schemadiff` (with :mod:`.keywords` and :mod:`.structure`): a direction-aware JSON Schema differ;
  inputs may only widen in a minor release, outputs only narrow.
- :mod:`.interface`: endpoints, protocols, trigger, event topics and permissions.
- :mod:`.contract`: what one version promises (manifest, schemas, file set), from a folder or the history.
- :mod:`.verdict`: :func:`verdict` (every change, the bump needed and made) and :func:`suggest_version`.
- :mod:`.semantic`: values generated from the old schema, validated against the new one (hypothesis-jsonschema).
- :mod:`.previous`: the previous version's tests run against the new handler (through ``plugin test``).
- :mod:`.history` and :mod:`.gate`: the local record of signed versions, and the check ``plugin sign`` makes.
- :mod:`.overrides`: ``compat.yaml``, the author's recorded reasons for changes that cannot be proven.
- :mod:`.sources`: ``plugin compat``'s arguments (folders, ``.synapse`` archives, ``name@version``).
- :mod:`.render`: a verdict as a table, for the CLI and the notebook.
"""

from __future__ import annotations

from .contract import Contract
from .gate import REUSE_POLICIES, Gate, ReusePolicy, check_release, check_replacement
from .history import HistoryRecord, find_record, publisher_id, records
from .model import BUMPS, Bump, Change, CompatibilityError, Direction, Effect
from .overrides import OVERRIDES_FILE, Override
from .previous import run_previous_tests
from .render import verdict_lines
from .schemadiff import SchemaDocs, diff_schema
from .verdict import Verdict, compare, suggest_version, verdict
from .versions import bump_made, is_sufficient, next_version

__all__ = [
    "BUMPS",
    "OVERRIDES_FILE",
    "REUSE_POLICIES",
    "Bump",
    "Change",
    "CompatibilityError",
    "Contract",
    "Direction",
    "Effect",
    "Gate",
    "HistoryRecord",
    "Override",
    "ReusePolicy",
    "SchemaDocs",
    "Verdict",
    "bump_made",
    "check_release",
    "check_replacement",
    "compare",
    "diff_schema",
    "find_record",
    "is_sufficient",
    "next_version",
    "publisher_id",
    "records",
    "run_previous_tests",
    "suggest_version",
    "verdict",
    "verdict_lines",
]
