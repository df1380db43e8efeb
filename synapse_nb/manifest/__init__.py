"""Manifest v1: the JSON Schema shipped with the package, located loading and the typed model."""

from __future__ import annotations

from .load import MANIFEST_FILE, PLUGIN_NAME, load_manifest, manifest_schema, parse_manifest
from .model import (
    BatchPolicy,
    CachePolicy,
    Execution,
    Interface,
    Manifest,
    NetworkAccess,
    Permissions,
    RuntimeRequirement,
    SystemResources,
)

__all__ = [
    "MANIFEST_FILE",
    "PLUGIN_NAME",
    "BatchPolicy",
    "CachePolicy",
    "Execution",
    "Interface",
    "Manifest",
    "NetworkAccess",
    "Permissions",
    "RuntimeRequirement",
    "SystemResources",
    "load_manifest",
    "manifest_schema",
    "parse_manifest",
]
