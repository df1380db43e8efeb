"""A plugin defined by a notebook cell: the folder written from options and a handler, signed and activated.

This is the logic behind ``%%synapse_plugin`` without IPython, so scripts and tests can drive it too.
:meth:`NotebookSession.define` writes ``./synapse-plugins/NAME`` (manifest, handler, schemas, requirements and
a smoke test from the examples), validates it, signs it with the developer key (created on first use), and
activates the warm worker. Re-running an unchanged definition is a no-op: the file set, its digest and the
running worker stay as they are. A changed definition replaces the previous version through
:meth:`PluginManager.load <synapse_nb.manager.PluginManager.load>`; its state carries over (the store keeps it
by plugin name and publisher) unless the major version changed, which says the state shape did. A definition
that fails validation leaves the previous version serving, and the error says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidError, Problem, UsageError
from ..manager import PluginManager
from ..manifest import PLUGIN_NAME
from ..plugin import Plugin
from ..schemas import INPUT_SCHEMA, OUTPUT_SCHEMA, SCHEMA_DIR
from ..semver import SemVer
from .infer import infer_schema

__all__ = ["CellSpec", "DefineResult", "NotebookSession", "render_files"]

PLUGINS_DIR = "synapse-plugins"
EXAMPLES_FILE = "examples.json"
PERMISSIVE = {"$schema": "http://json-schema.org/draft-07/schema#"}


@dataclass
class CellSpec:
    """Everything ``%%synapse_plugin`` can say about a plugin."""

    name: str
    handler: str
    version: str = "0.1.0"
    type: str = "general"
    trigger: str = "sync"
    timeout: str = "30s"
    memory_mb: int = 512
    domains: tuple[str, ...] = ()
    gpu: bool = False
    requirements: tuple[str, ...] = ()
    input_schema: dict[str, Any] | bool | None = None
    output_schema: dict[str, Any] | bool | None = None
    examples: list[Any] = field(default_factory=list)
    directory: Path | None = None
    description: str = ""
    topics: tuple[str, ...] = ()

    def folder(self, base: Path) -> Path:
        return self.directory if self.directory is not None else base / self.name


def _manifest(spec: CellSpec) -> str:
    execution: dict[str, Any] = {"trigger": spec.trigger, "timeout": spec.timeout}
    doc: dict[str, Any] = {
        "apiVersion": "synapse.io/v1",
        "kind": "AIPlugin",
        "metadata": {"name": spec.name, "version": spec.version},
        "spec": {
            "runtime": "python3",
            "execution": execution,
            "interfaces": [{"type": spec.type, "protocol": "local", "endpoints": {"primary": f"/v1/{spec.name}"}}],
            "permissions": {
                "network_access": {"domains": list(spec.domains)},
                "system_resources": {"gpu": spec.gpu, "memory_mb": spec.memory_mb},
            },
        },
    }
    if spec.description:
        doc["metadata"]["description"] = spec.description
    if spec.topics:
        doc["spec"]["events"] = {"topics": list(spec.topics)}
    header = "# Written by %%synapse_plugin from a notebook cell; edit the cell, not this file.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _smoke_test(spec: CellSpec) -> str:
    """The test file written beside a cell plugin (no dedent of an f-string: substituted multi-line JSON would
    defeat it and leave the code indented)."""
    module = spec.name.replace("-", "_")
    if spec.examples:
        return (
            '"""Smoke test written by %%synapse_plugin: every --example (tests/examples.json) runs and validates in\n'
            'the sandbox."""\n'
            "\n"
            "import json\n"
            "from pathlib import Path\n"
            "\n"
            f'EXAMPLES = json.loads(Path(__file__).with_name("{EXAMPLES_FILE}").read_text(encoding="utf-8"))\n'
            "\n"
            "\n"
            f"def test_{module}_runs_every_example(plugin):\n"
            "    for example in EXAMPLES:\n"
            "        plugin.run(example)\n"
        )
    return (
        '"""Smoke test written by %%synapse_plugin (pass --example to test real payloads)."""\n'
        "\n"
        "\n"
        f"def test_{module}_activates(plugin):\n"
        f'    assert plugin.manifest.name == "{spec.name}"\n'
    )


def _schema_text(schema: Any) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def render_files(spec: CellSpec, *, input_schema: Any, output_schema: Any) -> dict[str, str]:
    """Relative path -> content of every file of the plugin folder."""
    return {
        "manifest.yaml": _manifest(spec),
        "handler.py": spec.handler if spec.handler.endswith("\n") else spec.handler + "\n",
        "requirements.txt": "".join(f"{r}\n" for r in spec.requirements) or "# no requirements\n",
        f"{SCHEMA_DIR}/{INPUT_SCHEMA}": _schema_text(input_schema),
        f"{SCHEMA_DIR}/{OUTPUT_SCHEMA}": _schema_text(output_schema),
        f"tests/test_{spec.name.replace('-', '_')}.py": _smoke_test(spec),
        **({f"tests/{EXAMPLES_FILE}": json.dumps(spec.examples, indent=2) + "\n"} if spec.examples else {}),
    }


def _write(folder: Path, files: dict[str, str]) -> bool:
    """Write what differs; remove files a previous definition wrote that this one does not. Changed?"""
    changed = False
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = folder / rel
        try:
            if path.read_text(encoding="utf-8") == content:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
        changed = True
    for path in sorted([*folder.glob("tests/test_*.py"), folder / "tests" / EXAMPLES_FILE]):
        if not path.exists():
            continue
        if path.relative_to(folder).as_posix() not in files:
            path.unlink()
            changed = True
    return changed


@dataclass
class DefineResult:
    """What defining a cell plugin did."""

    plugin: Plugin
    folder: Path
    changed: bool
    created_key: bool = False
    warnings: list[str] = field(default_factory=list)
    inferred: list[str] = field(default_factory=list)


class NotebookSession:
    """One notebook's plugins: a manager, the plugins defined by cells, and where their folders go."""

    def __init__(self, manager: PluginManager | None = None, *, base_dir: Path | None = None) -> None:
        self.manager = manager or PluginManager()
        self.base_dir = base_dir or Path.cwd() / PLUGINS_DIR
        self.defined: dict[str, DefineResult] = {}
        self.failures: dict[str, str] = {}  # name -> why its last redefinition failed

    def note_failure(self, name: str, error: Exception) -> None:
        """Remember that redefining ``name`` failed (while an older version may still be serving)."""
        self.failures[name] = str(error).splitlines()[0][:300]

    def failure_note(self, name: str) -> str:
        """What ``%synapse run`` says when the version answering is not the one the last cell defined."""
        why = self.failures.get(name)
        return f"the last redefinition failed ({why})" if why else ""

    def folder(self, name: str) -> Path:
        """The folder of a plugin known to this notebook (defined by a cell, or loaded)."""
        result = self.defined.get(name)
        if result is not None:
            return result.folder
        record = self.manager.plugins.get(name)
        if record is not None:
            return record.path
        return self.plugin(name).source  # raises the "no plugin named" UsageError

    def _check(self, spec: CellSpec) -> None:
        if not PLUGIN_NAME.match(spec.name):
            raise UsageError(
                f"plugin name {spec.name!r} is not a lower-case DNS label (a-z, 0-9 and '-', e.g. 'sentiment')"
            )
        try:
            SemVer.parse(spec.version)
        except ValueError as exc:
            raise UsageError(f"--version: {exc}") from None
        if not spec.handler.strip():
            raise UsageError("the cell is empty: write the handler class (a BaseHandler subclass) in the cell")

    def define(self, spec: CellSpec) -> DefineResult:
        """Write, validate, sign and activate; a no-op when nothing changed since the last definition."""
        from ..anatomy import validate_folder
        from ..signing import ensure_developer_key, sign_folder

        self._check(spec)
        folder = spec.folder(self.base_dir)
        warnings: list[str] = []
        inferred: list[str] = []
        input_schema: Any = spec.input_schema
        if input_schema is None:
            if spec.examples:
                input_schema = infer_schema(spec.examples, title=f"{spec.name} input (inferred from --example)")
                inferred.append(INPUT_SCHEMA)
            else:
                input_schema = PERMISSIVE
                warnings.append("no --input-schema or --example: the input schema accepts anything")
        previous = self.defined.get(spec.name)
        output_schema: Any = spec.output_schema
        infer_output = output_schema is None and bool(spec.examples)
        if output_schema is None:
            existing = folder / SCHEMA_DIR / OUTPUT_SCHEMA
            if infer_output and previous is not None and OUTPUT_SCHEMA in previous.inferred and existing.is_file():
                output_schema = json.loads(existing.read_text())  # inferred last time from the same examples
                infer_output = False
                inferred.append(OUTPUT_SCHEMA)
            else:
                output_schema = PERMISSIVE
                if not spec.examples:
                    warnings.append("no --output-schema or --example: the output schema accepts anything")
        files = render_files(spec, input_schema=input_schema, output_schema=output_schema)
        changed = _write(folder, files)
        if not changed and previous is not None and not previous.plugin.released:
            previous.changed = False
            return previous  # same files, same digest: no re-sign, no cold start
        try:
            validate_folder(folder)
        except InvalidError as exc:
            if previous is not None and not previous.plugin.released:
                exc.details.append(
                    f"{previous.plugin.name} {previous.plugin.version} is still active and answers %synapse run"
                )
            raise
        key_existed = (ensure_developer_key_path()).exists()
        ensure_developer_key()
        sign_folder(folder)
        plugin = self._load(folder)
        if infer_output:
            plugin = self._infer_output(spec, folder, plugin, files, input_schema)
            inferred.append(OUTPUT_SCHEMA)
        self.failures.pop(spec.name, None)
        result = DefineResult(
            plugin=plugin,
            folder=folder,
            changed=True,
            created_key=not key_existed,
            warnings=warnings,
            inferred=inferred,
        )
        self.defined[spec.name] = result
        return result

    def _load(self, folder: Path) -> Plugin:
        loaded = self.manager.load(folder)  # replaces the running version when the files changed
        loaded.keep_history(32)
        return loaded

    def _infer_output(
        self, spec: CellSpec, folder: Path, plugin: Plugin, files: dict[str, str], input_schema: Any
    ) -> Plugin:
        """Run the examples in the sandbox, infer the output schema from the results, re-sign and re-activate."""
        from ..signing import sign_folder

        outputs = [plugin.run(example) for example in spec.examples]
        schema = infer_schema(outputs, title=f"{spec.name} output (inferred from the --example results)")
        files = render_files(spec, input_schema=input_schema, output_schema=schema)
        _write(folder, files)
        sign_folder(folder)
        return self._load(folder)

    def plugin(self, name: str) -> Plugin:
        result = self.defined.get(name)
        if result is not None:
            return result.plugin
        record = self.manager.plugins.get(name)
        if record is not None and record.plugin is not None:
            return record.plugin
        known = ", ".join(sorted(set(self.defined) | set(self.manager.plugins))) or "none yet"
        raise UsageError(f"no plugin named {name!r} in this notebook (known: {known}); define it with %%synapse_plugin")


def ensure_developer_key_path() -> Path:
    """Where the developer certificate lives (to tell whether this definition created it)."""
    from ..signing.keys import KeyFiles, keys_dir

    return KeyFiles(keys_dir()).cert


def handler_problem_in_cell(error: InvalidError) -> Problem | None:
    """The first problem located in handler.py, whose lines are the cell's lines."""
    for problem in error.problems:
        if problem.file.endswith("handler.py"):
            return problem
    return None
