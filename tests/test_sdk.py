"""The SDK and the handler host: spec-style handlers run unchanged; results are JSON-checked on the host."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.activation import ActivationOptions
from synapse_nb.errors import PluginFailed, ValidationError
from synapse_nb.inprocess import InProcessPlugin, load_in_process

MakePlugin = Callable[..., Path]


def debug_load(folder: Path, state: dict[str, object] | None = None) -> InProcessPlugin:
    """The folder in this process (debug mode); unsigned, as a plugin being written is."""
    return load_in_process(folder, ActivationOptions(insecure_allow_unsigned=True, warn=lambda _t: None, state=state))


HANDLER_RETURNING = (
    "from synapse_nb.sdk import BaseHandler\nclass A(BaseHandler):\n    def execute(self, d):\n        return {}\n"
)

SPEC_STYLE = """
from synapse.sdk import BaseHandler

async def transform_data(data):
    return [float(len(data["text"]))]

class CustomProcessor(BaseHandler):
    def validate_input(self, payload):
        return self.validate_with_schema('input_schema.json', payload)

    async def execute(self, validated_data):
        # Business logic implementation
        processed = await transform_data(validated_data)
        return {"result": {"words": int(processed[0]), "upper": "X"}}
"""


def test_a_handler_written_exactly_as_the_spec_shows_runs(make_plugin: MakePlugin) -> None:
    with debug_load(make_plugin(handler=SPEC_STYLE)) as plugin:
        assert plugin.run({"text": "abc"}) == {"result": {"words": 3, "upper": "X"}}


def test_no_top_level_synapse_package_is_installed() -> None:
    code = "import importlib.util, sys; print(importlib.util.find_spec('synapse'))"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_the_alias_is_never_installed_over_a_real_synapse_package(tmp_path: Path) -> None:
    (tmp_path / "synapse").mkdir()
    (tmp_path / "synapse" / "__init__.py").write_text("REAL = True\n")
    code = "from synapse_nb.sdk import install_synapse_alias as a; a(); import synapse; print(synapse.REAL)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == "True"


def test_validate_with_schema_inside_the_handler_uses_the_plugin_schemas(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\n"
        "class A(BaseHandler):\n"
        "    def execute(self, d):\n"
        "        self.validate_with_schema('output_schema.json', {'result': {'words': 'many'}})\n"
    )
    with (
        debug_load(make_plugin(handler=handler)) as plugin,
        pytest.raises(ValidationError, match="/result"),
    ):
        plugin.run({"text": "x"})


def test_sync_execute_and_default_execute_batch(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\n"
        "class A(BaseHandler):\n"
        "    def execute(self, d):\n"
        "        return {'result': {'words': len(d['text']), 'upper': d['text'].upper()}}\n"
    )
    with debug_load(make_plugin(handler=handler)) as plugin:
        assert plugin.run_batch([{"text": "a"}, {"text": "bb"}]) == [
            {"result": {"words": 1, "upper": "A"}},
            {"result": {"words": 2, "upper": "BB"}},
        ]


def test_a_result_that_is_not_json_is_a_plugin_failure(make_plugin: MakePlugin) -> None:
    handler = HANDLER_RETURNING.format("{1, 2}")
    with (
        debug_load(make_plugin(handler=handler)) as plugin,
        pytest.raises(PluginFailed, match="not JSON"),
    ):
        plugin.run({"text": "x"})


def test_nan_is_not_json(make_plugin: MakePlugin) -> None:
    handler = HANDLER_RETURNING.format("{'result': float('nan')}")
    with (
        debug_load(make_plugin(handler=handler)) as plugin,
        pytest.raises(PluginFailed, match="not JSON"),
    ):
        plugin.run({"text": "x"})


def test_an_exception_in_execute_names_its_location(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\n"
        "class A(BaseHandler):\n"
        "    def execute(self, d):\n"
        "        raise KeyError('missing thing')\n"
    )
    with debug_load(make_plugin(handler=handler)) as plugin, pytest.raises(PluginFailed) as info:
        plugin.run({"text": "x"})
    assert info.value.exc_type == "KeyError"
    assert info.value.location == "handler.py:4 in execute"
    assert str(info.value) == "demo-plugin: KeyError: 'missing thing' (handler.py:4 in execute)"


def test_output_is_validated_against_the_output_schema(make_plugin: MakePlugin) -> None:
    handler = HANDLER_RETURNING.format("{'result': 1}")
    with debug_load(make_plugin(handler=handler)) as plugin, pytest.raises(ValidationError) as info:
        plugin.run({"text": "x"})
    assert info.value.direction == "output"
    assert info.value.pointer == "/result"


def test_a_payload_that_is_not_json_is_refused_before_the_handler_runs(make_plugin: MakePlugin) -> None:
    with debug_load(make_plugin()) as plugin, pytest.raises(ValidationError, match="input is not JSON"):
        plugin.run({"text": object()})


def test_state_survives_calls_and_is_returned_at_teardown(make_plugin: MakePlugin) -> None:
    handler = (
        "from synapse_nb.sdk import BaseHandler\n"
        "class A(BaseHandler):\n"
        "    def execute(self, d):\n"
        "        self.state['n'] = self.state.get('n', 0) + 1\n"
        "        return {'result': {'words': self.state['n'], 'upper': ''}}\n"
    )
    plugin = debug_load(make_plugin(handler=handler), state={"n": 41})
    assert plugin.run({"text": "x"})["result"]["words"] == 42
    assert plugin.state == {"n": 42}
    assert plugin.teardown() == {"n": 42}


def test_the_sdk_imports_only_the_standard_library() -> None:
    code = (
        "import sys; import synapse_nb.sdk, synapse_nb.runtime; "
        "bad = sorted(m for m in ('yaml', 'jsonschema', 'cryptography', 'pandas', 'IPython') if m in sys.modules); "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importlib_finds_the_sdk_module() -> None:
    assert importlib.util.find_spec("synapse_nb.sdk") is not None
