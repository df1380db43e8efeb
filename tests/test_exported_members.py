"""The public API: __all__ lists exactly the public names, and `import synapse_nb` stays light."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import synapse_nb


def test_all_lists_exactly_the_public_names() -> None:
    for name in synapse_nb.__all__:
        assert getattr(synapse_nb, name) is not None, name
    public = {
        name
        for name in dir(synapse_nb)
        if not name.startswith("_") and not isinstance(getattr(synapse_nb, name), types.ModuleType)
    }
    assert public - {"annotations", "Any"} == set(synapse_nb.__all__) - {"__version__"}


def test_every_error_is_exported_and_maps_to_an_exit_code() -> None:
    from synapse_nb import errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.SynapseError):
            assert name in synapse_nb.__all__
            assert obj.exit_code in errors.EXIT_CODE_NAMES


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
