"""Plugin anatomy: a folder with manifest.yaml, handler.py, schemas/, tests/ and requirements.txt, checked whole.

:func:`validate_folder` checks every part and reports every problem at once, each located
(``path/manifest.yaml:7:14: /spec/execution/timeout: ...``, ``path/handler.py:3:5: invalid syntax``).

Validation is **static**: nothing of the plugin is executed on the host. The handler is parsed and compiled
(never imported or run) and its syntax tree is read: exactly one class deriving from ``BaseHandler`` (or the
class named by ``spec.execution.entrypoint``), defining ``execute`` or ``execute_batch``. Whether its imports
resolve is known only when it is imported, which happens at activation, inside the jail. Parsing is bounded:
the file's size is capped and a construct too deep for the compiler is a located problem (exit 3), never a
crash of the host.

The same rules apply to the same file set wherever a folder is checked (``plugin validate``, ``sign`` and
activation of the snapshot): for example ``tests/`` must hold at least one pytest file, since an empty folder
is not part of a file set.
"""

from __future__ import annotations

import ast
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HandlerError, InvalidError, Problem
from .manifest import MANIFEST_FILE, Manifest, load_manifest
from .requirements import Requirements, load_requirements
from .runtime import split_entrypoint
from .schemas import SchemaSet, load_schemas

__all__ = [
    "HANDLER_FILE",
    "MAX_HANDLER_BYTES",
    "TESTS_DIR",
    "PluginFolder",
    "check_handler",
    "display_path",
    "split_entrypoint",
    "validate_folder",
]

HANDLER_FILE = "handler.py"
TESTS_DIR = "tests"
MAX_HANDLER_BYTES = 4 << 20
_LIFECYCLE = ("execute", "execute_batch")


def display_path(folder: str | Path, name: str = "") -> str:
    """How a file inside a plugin folder is named in messages: relative as the user gave it."""
    base = os.path.normpath(str(folder))
    if not name:
        return base
    return name if base == "." else f"{base}/{name}"


@dataclass
class PluginFolder:
    """A plugin folder whose every part validated."""

    path: Path
    manifest: Manifest
    schemas: SchemaSet
    requirements: Requirements
    handler_class: str | None = None
    handler_line: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "plugin": m.name,
            "version": str(m.version),
            "path": str(self.path),
            "runtime": str(m.runtime),
            "trigger": m.execution.trigger,
            "timeout_ms": m.execution.timeout_ms,
            "handler": {"class": self.handler_class, "line": self.handler_line},
            "schemas": sorted(self.schemas.schemas),
            "requirements": [r.text for r in self.requirements],
            "permissions": {
                "network_access": {"domains": list(m.permissions.domains)},
                "system_resources": {"gpu": m.permissions.gpu, "memory_mb": m.permissions.memory_mb},
            },
            "secrets": list(m.secrets),
            "warnings": self.warnings,
        }


# -- the handler, statically -------------------------------------------------------------------------------------
def _parse(source_path: Path, shown: str) -> tuple[ast.Module | None, list[Problem]]:
    """Parse and compile (bounded); the tree, or the located problem."""
    try:
        size = source_path.stat().st_size
        if size > MAX_HANDLER_BYTES:
            return None, [
                Problem(shown, f"is {size} bytes, over the {MAX_HANDLER_BYTES >> 20} MiB limit for a handler")
            ]
        source = source_path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(shown, "missing; the entrypoint file of every plugin (see synapse-cli plugin init)")]
    except OSError as exc:
        return None, [Problem(shown, f"cannot read: {exc.strerror}")]
    try:
        with warnings.catch_warnings():  # the plugin's own SyntaxWarnings are not the host's to print
            warnings.simplefilter("ignore")
            tree = ast.parse(source, shown)
            compile(tree, shown, "exec", dont_inherit=True)  # what only the compiler sees (return outside a def)
    except SyntaxError as exc:
        return None, [Problem(shown, f"{type(exc).__name__}: {exc.msg}", exc.lineno, exc.offset)]
    except (RecursionError, MemoryError):
        return None, [Problem(shown, "an expression or block is nested too deeply (or is too large) to compile")]
    except ValueError as exc:  # e.g. source with NUL bytes
        return None, [Problem(shown, f"cannot compile: {exc}")]
    return tree, []


def _base_names(cls: ast.ClassDef) -> list[str]:
    names = []
    for base in cls.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
        else:
            names.append("?")
    return names


def _defines(cls: ast.ClassDef, names: tuple[str, ...]) -> bool:
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in names for t in targets):
                return True
    return False


class _Handlers:
    """The module's top-level classes and which of them derive (transitively, in the module) from BaseHandler."""

    def __init__(self, tree: ast.Module) -> None:
        self.classes: dict[str, ast.ClassDef] = {}
        self.handlers: dict[str, ast.ClassDef] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
                if any(b == "BaseHandler" or b in self.handlers for b in _base_names(node)):
                    self.handlers[node.name] = node
        self.assigned = {
            t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
        }
        self.imported = {
            (alias.asname or alias.name).split(".")[0]
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }

    def implements(self, cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> bool | None:
        """Does ``cls`` define execute/execute_batch itself or through a local base? None: cannot tell (a base
        comes from another module)."""
        if _defines(cls, _LIFECYCLE):
            return True
        unknown = False
        for base in _base_names(cls):
            if base == "BaseHandler" or base in seen:
                continue
            local = self.classes.get(base)
            if local is None:
                unknown = True
                continue
            found = self.implements(local, seen | {cls.name})
            if found:
                return True
            unknown = unknown or found is None
        return None if unknown else False


def check_handler(
    folder: Path, entrypoint: str | None, *, shown_root: str
) -> tuple[str | None, int | None, list[Problem], list[str]]:
    """Check the entrypoint file statically: (class name, line, problems, warnings). Nothing is imported."""
    entry_file, class_name = split_entrypoint(entrypoint)
    shown = display_path(shown_root, entry_file)
    tree, problems = _parse(folder / entry_file, shown)
    if tree is None:
        return None, None, problems, []
    found = _Handlers(tree)
    warnings: list[str] = []
    if class_name is not None:
        cls = found.classes.get(class_name)
        if cls is None:
            if class_name in found.assigned or class_name in found.imported:
                warnings.append(f"{shown}: entrypoint {class_name!r} is not a class statement; checked at activation")
                return class_name, None, [], warnings
            return None, None, [Problem(shown, f"entrypoint class {class_name!r} is not defined")], []
        if class_name not in found.handlers and all(b in found.classes or b == "?" for b in _base_names(cls)):
            return (
                None,
                None,
                [Problem(shown, f"entrypoint {class_name!r} is not a BaseHandler subclass", cls.lineno)],
                [],
            )
    else:
        candidates = list(found.handlers.values())
        if not candidates:
            message = (
                "defines no handler: add a class deriving from BaseHandler (from synapse_nb.sdk import BaseHandler)"
            )
            return None, None, [Problem(shown, message)], []
        if len(candidates) > 1:
            listed = ", ".join(f"{c.name} (line {c.lineno})" for c in candidates)
            message = (f"defines {len(candidates)} handler classes: {listed}; keep one, or name it in "
                       f"spec.execution.entrypoint ('{entry_file}:{candidates[0].name}')")  # fmt: skip
            return None, None, [Problem(shown, message, candidates[1].lineno)], []
        cls = candidates[0]
    implements = found.implements(cls)
    if implements is False:
        return (
            None,
            None,
            [Problem(shown, f"{cls.name} does not implement execute(self, validated_data)", cls.lineno)],
            [],
        )
    return cls.name, cls.lineno, [], warnings


# -- the folder --------------------------------------------------------------------------------------------------
def _tests_problem(path: Path, shown_root: str) -> Problem | None:
    """``tests/`` must hold a pytest file (``test_*.py`` or ``*_test.py``), at any depth. One message whether the
    folder is missing or holds none: a file set (and so a snapshot) has no empty folders."""
    tests = path / TESTS_DIR
    for _dirpath, dirnames, filenames in os.walk(tests):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        if any(f.endswith(".py") and (f.startswith("test_") or f.endswith("_test.py")) for f in filenames):
            return None
    return Problem(
        display_path(shown_root, TESTS_DIR + "/"),
        "missing or holds no pytest file (test_*.py or *_test.py); every plugin ships tests",
    )


def validate_folder(
    folder: str | Path,
    *,
    display: str | Path | None = None,
    manifest: Manifest | None = None,
    requirements: Requirements | None = None,
) -> PluginFolder:
    """Check a plugin folder whole, statically; :class:`InvalidError` (or a subclass) lists every problem found.

    ``display`` names the folder in messages when ``folder`` is a copy (a snapshot) of what the user gave;
    ``manifest`` and ``requirements`` are reused when the caller has already parsed them from this folder.
    """
    path = Path(folder)
    shown_root = display_path(display if display is not None else folder)
    if not path.is_dir():
        raise InvalidError.from_problems([Problem(shown_root, "is not a plugin folder (no such directory)")])
    problems: list[Problem] = []
    error_types: list[type[InvalidError]] = []
    plugin = Path(shown_root).resolve().name

    def collect(exc: InvalidError) -> None:
        problems.extend(exc.problems or [Problem(shown_root, str(exc))])
        error_types.append(type(exc))

    schemas = None
    if manifest is None:
        try:
            manifest = load_manifest(path, display=display_path(shown_root, MANIFEST_FILE))
        except InvalidError as exc:
            collect(exc)
    if manifest is not None:
        plugin = manifest.name
    try:
        schemas = load_schemas(path, plugin=plugin, display_root=shown_root if shown_root != "." else "")
    except InvalidError as exc:
        collect(exc)
    if requirements is None:
        try:
            requirements = load_requirements(path, display=display_path(shown_root, "requirements.txt"))
        except InvalidError as exc:
            collect(exc)
    missing_tests = _tests_problem(path, shown_root)
    if missing_tests is not None:
        problems.append(missing_tests)
        error_types.append(InvalidError)
    entrypoint = manifest.execution.entrypoint if manifest else None
    handler_class, handler_line, found, warnings = check_handler(path, entrypoint, shown_root=shown_root)
    if found:
        problems.extend(found)
        error_types.append(HandlerError)
    if problems:
        raise error_types[0].from_problems(problems, plugin=plugin)
    if manifest is None or schemas is None or requirements is None:  # pragma: no cover - problems were collected
        raise InvalidError("internal: validation produced no result", plugin=plugin)
    schemas.plugin = manifest.name
    if not manifest.runtime.satisfied_by():
        warnings.append(
            f"runtime {manifest.runtime} is newer than this interpreter "
            f"(python{sys.version_info[0]}.{sys.version_info[1]}); another interpreter will be needed to run it"
        )
    return PluginFolder(
        path=path,
        manifest=manifest,
        schemas=schemas,
        requirements=requirements,
        handler_class=handler_class,
        handler_line=handler_line,
        warnings=warnings,
    )
