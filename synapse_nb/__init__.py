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
    from typing import Any

    from .anatomy import PluginFolder, validate_folder
    from .errors import (
        CircuitOpen,
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
    from .manifest import Manifest, load_manifest, parse_manifest
    from .sdk import BaseHandler, Context

__all__ = [
    "BaseHandler",
    "CircuitOpen",
    "Context",
    "HandlerError",
    "InProcessPlugin",
    "InvalidError",
    "Manifest",
    "ManifestError",
    "PluginCrashed",
    "PluginFailed",
    "PluginFolder",
    "PluginTimeout",
    "RegistryError",
    "RequirementsError",
    "ResourceLimitExceeded",
    "SandboxError",
    "SchemaError",
    "SignatureError",
    "SynapseError",
    "UsageError",
    "ValidationError",
    "__version__",
    "load_manifest",
    "parse_manifest",
    "validate_folder",
]

# Where each lazily imported public name lives.
_LAZY = {
    "BaseHandler": "sdk",
    "Context": "sdk",
    "InProcessPlugin": "inprocess",
    "Manifest": "manifest",
    "load_manifest": "manifest",
    "parse_manifest": "manifest",
    "PluginFolder": "anatomy",
    "validate_folder": "anatomy",
}


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
