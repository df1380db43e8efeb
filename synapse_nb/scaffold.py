"""``synapse-cli plugin init``: new plugin folders from the templates shipped in the package.

One template per integration point of the spec: ``python`` (generic), ``model-wrapper``, ``data-processor``,
``service-connector`` and ``event-handler``. Every template validates and its own tests pass as created.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from .errors import UsageError
from .manifest import PLUGIN_NAME

__all__ = ["TEMPLATES", "class_name_for", "create_plugin"]

TEMPLATES = ("python", "model-wrapper", "data-processor", "service-connector", "event-handler")


def class_name_for(name: str) -> str:
    """``custom-processor`` -> ``CustomProcessor`` (a digit-first name gets a ``Plugin`` prefix)."""
    camel = "".join(part.capitalize() for part in name.split("-") if part)
    return camel if camel[:1].isalpha() else f"Plugin{camel}"


def _render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _copy_tree(source: Traversable, target: Path, values: dict[str, str]) -> None:
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        dest = target / _render(entry.name, values)
        if entry.is_dir():
            dest.mkdir()
            _copy_tree(entry, dest, values)
        else:
            dest.write_text(_render(entry.read_text("utf-8"), values), encoding="utf-8")


def create_plugin(name: str, *, template: str = "python", directory: str | Path | None = None) -> Path:
    """Create a plugin folder (default ``./NAME``) from ``template``; refuses to overwrite anything."""
    if not PLUGIN_NAME.match(name or ""):
        raise UsageError(
            f"plugin name {name!r} is not a lower-case DNS label (a-z, 0-9 and '-', e.g. 'custom-processor')"
        )
    if template not in TEMPLATES:
        raise UsageError(f"unknown template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    target = Path(directory) if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{str(target)!r} already exists and is not empty; choose another --dir")
    values = {"name": name, "class_name": class_name_for(name), "module": name.replace("-", "_")}
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target and rename into place: an interrupted init leaves nothing half-written.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        _copy_tree(resources.files(__package__).joinpath("templates", template), staging, values)
        os.chmod(staging, 0o755)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
