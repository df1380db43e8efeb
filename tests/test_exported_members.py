"""The public API: __all__ lists exactly the public names, and `import synapse_nb` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import synapse_nb

# The public API, written out: a name added to or dropped from __all__ must be added or dropped here too.
PUBLIC = {
    "BaseHandler", "CircuitOpen", "Context", "DependencyError", "EventDelivery", "HandlerError", "InProcessPlugin",
    "InvalidError", "Invocation", "Job", "LifecycleEvent", "Manifest", "ManifestError", "Plugin", "PluginCrashed",
    "PluginFailed", "PluginFolder", "PluginManager", "PluginTimeout", "RegistryError", "RequirementsError",
    "ResourceLimitExceeded", "SandboxError", "SchemaError", "SignatureError", "Stage", "SynapseError", "UsageError",
    "ValidationError", "__version__", "connect", "load", "load_ipython_extension", "load_manifest", "parse_manifest",
    "status", "unload_ipython_extension", "validate_folder",
}  # fmt: skip


def test_all_lists_exactly_the_public_names_and_is_sorted() -> None:
    assert set(synapse_nb.__all__) == PUBLIC
    assert list(synapse_nb.__all__) == sorted(synapse_nb.__all__)
    for name in synapse_nb.__all__:
        assert getattr(synapse_nb, name) is not None, name


def test_every_error_class_anywhere_is_exported_and_maps_to_an_exit_code() -> None:
    """Errors defined outside errors.py (ConfigError, FileSetError, StateStoreError...) count too."""
    import importlib
    import pkgutil

    from synapse_nb import errors

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(synapse_nb.__path__, "synapse_nb."):
        if info.name.startswith(
            (
                "synapse_nb.notebook",
                "synapse_nb.server",
                "synapse_nb.templates",
                "synapse_nb.examples",
                "synapse_nb.sandbox.guest",
                "synapse_nb.sandbox.testsession",
            )
        ):
            continue  # fmt: skip
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, errors.SynapseError) and obj.__module__ == info.name:
                found[obj.__name__] = obj
    assert {"ConfigError", "FileSetError", "StateStoreError", "SynapseError", "UsageError"} <= set(found)
    for name, cls in found.items():
        assert cls.exit_code in errors.EXIT_CODE_NAMES, name
        assert cls.exit_code != 1 or cls is errors.SynapseError, f"{name} would be reported as an internal error"
        base = next(b for b in cls.__mro__ if b.__name__ in errors.__all__)
        assert base.__name__ in synapse_nb.__all__, f"{name} is not catchable through a public error class"


def test_import_synapse_nb_is_light() -> None:
    code = (
        "import sys, synapse_nb; "
        "print(sorted(m for m in ('yaml', 'jsonschema', 'cryptography', 'pandas', 'IPython', 'ipywidgets', "
        "'grpc', 'google.protobuf', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'does_not_exist'"):
        synapse_nb.does_not_exist  # type: ignore[attr-defined]  # noqa: B018
