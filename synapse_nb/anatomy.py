"""Plugin anatomy: a folder with manifest.yaml, handler.py, schemas/, tests/ and requirements.txt, checked whole.

:func:`validate_folder` checks every part and reports every problem at once, each located
(``path/manifest.yaml:7:14: /spec/execution/timeout: ...``, ``path/handler.py:3:5: invalid syntax``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HandlerError, InvalidError, Problem
from .manifest import MANIFEST_FILE, Manifest, load_manifest
from .requirements import Requirements, load_requirements
from .schemas import SchemaSet, load_schemas

__all__ = ["HANDLER_FILE", "TESTS_DIR", "PluginFolder", "check_handler", "display_path", "validate_folder"]

HANDLER_FILE = "handler.py"
TESTS_DIR = "tests"
HANDLER_IMPORT_TIMEOUT_S = 60.0


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
            "warnings": self.warnings,
        }


def _compile_problems(source_path: Path, shown: str) -> list[Problem]:
    try:
        source = source_path.read_bytes()
    except FileNotFoundError:
        return [Problem(shown, "missing; the entrypoint file of every plugin (see synapse-cli plugin init)")]
    except OSError as exc:
        return [Problem(shown, f"cannot read: {exc.strerror}")]
    try:
        compile(source, shown, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [Problem(shown, f"{type(exc).__name__}: {exc.msg}", exc.lineno, exc.offset)]
    except ValueError as exc:  # e.g. source with NUL bytes
        return [Problem(shown, f"cannot compile: {exc}")]
    return []


def check_handler(
    folder: Path, entrypoint: str | None, *, shown_root: str, python: str | None = None
) -> tuple[str | None, int | None, list[Problem]]:
    """Import the handler in a separate process; (class name, line, problems)."""
    entry_file = (entrypoint or HANDLER_FILE).split(":", 1)[0]
    shown = display_path(shown_root, entry_file)
    problems = _compile_problems(folder / entry_file, shown)
    if problems:
        return None, None, problems
    read_fd, write_fd = os.pipe()
    code = "import sys; from synapse_nb.runtime import check_main; sys.exit(check_main())"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.Popen(
            [
                python or sys.executable,
                "-I",
                "-c",
                code,
                str(folder.resolve()),
                entrypoint or "",
                str(write_fd),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            env=env,
            cwd=folder,
        )
    finally:
        os.close(write_fd)
    try:
        _out, err = proc.communicate(timeout=HANDLER_IMPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        os.close(read_fd)
        return None, None, [Problem(shown, f"importing it took over {HANDLER_IMPORT_TIMEOUT_S:g}s")]
    with os.fdopen(read_fd, "rb") as fh:
        raw = fh.read()
    try:
        report = json.loads(raw)
    except ValueError:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return None, None, [Problem(shown, f"importing it killed the process: {tail[0]}")]
    if report.get("ok"):
        return report["class"], report.get("line"), []
    if "handler_error" in report:
        return (
            None,
            None,
            [Problem(shown, p["message"], p.get("line"), p.get("col")) for p in report["handler_error"]],
        )
    exc = report["exception"]
    location = exc.get("location") or ""
    line = None
    if location.startswith(entry_file + ":"):
        line = int(location.split(":")[1].split()[0])
    hint = ""
    if exc["type"] == "ModuleNotFoundError":
        hint = " (add the package to requirements.txt, or install it in this environment)"
    message = f"importing it raised {exc['type']}: {exc['message']}{hint}"
    if location and line is None:
        message += f" (at {location})"
    return None, None, [Problem(shown, message, line)]


def validate_folder(
    folder: str | Path, *, check_import: bool = True, python: str | None = None, display: str | Path | None = None
) -> PluginFolder:
    """Check a plugin folder whole; :class:`InvalidError` (or a subclass) lists every problem found.

    ``display`` names the folder in messages when ``folder`` is a copy (a snapshot) of what the user gave.
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

    manifest = schemas = requirements = None
    try:
        manifest = load_manifest(path, display=display_path(shown_root, MANIFEST_FILE))
        plugin = manifest.name
    except InvalidError as exc:
        collect(exc)
    try:
        schemas = load_schemas(path, plugin=plugin, display_root=shown_root if shown_root != "." else "")
    except InvalidError as exc:
        collect(exc)
    try:
        requirements = load_requirements(path, display=display_path(shown_root, "requirements.txt"))
    except InvalidError as exc:
        collect(exc)
    if not (path / TESTS_DIR).is_dir():
        problems.append(
            Problem(display_path(shown_root, TESTS_DIR + "/"), "missing; every plugin ships tests (pytest files)")
        )
        error_types.append(InvalidError)
    handler_class = handler_line = None
    entrypoint = manifest.execution.entrypoint if manifest else None
    if check_import:
        handler_class, handler_line, found = check_handler(path, entrypoint, shown_root=shown_root, python=python)
        if found:
            problems.extend(found)
            error_types.append(HandlerError)
    else:
        entry_file = (entrypoint or HANDLER_FILE).split(":")[0]
        found = _compile_problems(path / entry_file, display_path(shown_root, entry_file))
        if found:
            problems.extend(found)
            error_types.append(HandlerError)
    if problems:
        raise error_types[0].from_problems(problems, plugin=plugin)
    if manifest is None or schemas is None or requirements is None:  # pragma: no cover - problems were collected
        raise InvalidError("internal: validation produced no result", plugin=plugin)
    schemas.plugin = manifest.name
    warnings = []
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
