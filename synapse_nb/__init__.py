"""synapse_nb: a notebook-native plugin system for AI plugins (SynapseEngine's Plugin System).

``import synapse_nb`` stays light (no jsonschema, cryptography, pandas or IPython is imported): the public
names below are imported on first access. In IPython, ``%load_ext synapse_nb`` registers the magics.
"""

from __future__ import annotations

import importlib as _importlib

# Not `from typing import TYPE_CHECKING`: the guest runtime imports this package at every cold start.
TYPE_CHECKING = False

__version__ = "0.1.0"

if TYPE_CHECKING:  # explicit imports for type checkers and readers; resolved lazily at run time
    from pathlib import Path
    from typing import Any

    import pandas as pd

    from .anatomy import PluginFolder, validate_folder
    from .errors import (
        CircuitOpen,
        DependencyError,
        HandlerError,
        InvalidError,
        ManifestError,
        PluginCrashed,
        PluginFailed,
        PluginTimeout,
        RegistryError,
        RequirementsError,
        ResourceLimitExceeded,
        SandboxError,
        SchemaError,
        SignatureError,
        SynapseError,
        UsageError,
        ValidationError,
    )
    from .inprocess import InProcessPlugin
    from .jobs import Job
    from .manager import EventDelivery, LifecycleEvent, PluginManager, Stage
    from .manifest import Manifest, load_manifest, parse_manifest
    from .plugin import Invocation, Plugin
    from .sdk import BaseHandler, Context
    from .serve.client import connect

__all__ = [
    "BaseHandler",
    "CircuitOpen",
    "Context",
    "DependencyError",
    "EventDelivery",
    "HandlerError",
    "InProcessPlugin",
    "InvalidError",
    "Invocation",
    "Job",
    "LifecycleEvent",
    "Manifest",
    "ManifestError",
    "Plugin",
    "PluginCrashed",
    "PluginFailed",
    "PluginFolder",
    "PluginManager",
    "PluginTimeout",
    "RegistryError",
    "RequirementsError",
    "ResourceLimitExceeded",
    "SandboxError",
    "SchemaError",
    "SignatureError",
    "Stage",
    "SynapseError",
    "UsageError",
    "ValidationError",
    "__version__",
    "connect",
    "load",
    "load_ipython_extension",
    "load_manifest",
    "parse_manifest",
    "status",
    "unload_ipython_extension",
    "validate_folder",
]

# Where each lazily imported public name lives.
_LAZY = {
    "BaseHandler": "sdk",
    "Context": "sdk",
    "InProcessPlugin": "inprocess",
    "Job": "jobs",
    "EventDelivery": "manager",
    "LifecycleEvent": "manager",
    "PluginManager": "manager",
    "Stage": "manager",
    "Invocation": "plugin",
    "Plugin": "plugin",
    "Manifest": "manifest",
    "load_manifest": "manifest",
    "parse_manifest": "manifest",
    "PluginFolder": "anatomy",
    "validate_folder": "anatomy",
    "connect": "serve.client",
}


def load(path: str | Path, *, debug: bool = False) -> Plugin | InProcessPlugin:
    """Activate the plugin folder at ``path`` (validated, signature verified, sandboxed) and return its handle.

    ``debug=True`` runs it in this process instead, unsandboxed, so that breakpoints and ``%debug`` work.
    The plugin is registered with the process-wide manager: see :func:`status`.
    """
    from .manager import default_manager

    return default_manager().load(path, debug=debug)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext synapse_nb``: register the ``%%synapse_plugin`` and ``%synapse`` magics."""
    from .notebook import load_ipython_extension as load_extension

    load_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext synapse_nb``: tear the notebook's plugins down."""
    from .notebook import unload_ipython_extension as unload_extension

    unload_extension(ipython)


def status() -> pd.DataFrame:
    """A pandas DataFrame with one row per plugin known to the process-wide manager."""
    from .manager import default_manager

    return default_manager().status()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = _importlib.import_module(f".{_LAZY[name]}", __name__)
    elif name in __all__:
        module = _importlib.import_module(".errors", __name__)
    else:
        raise AttributeError(f"module 'synapse_nb' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


del TYPE_CHECKING
