"""Registry search and install for the JupyterLab side, behind a seam until ``synapse_nb.registry`` exists.

The registry is being built separately; its command line is already a contract (``synapse-cli plugin search
[QUERY] [--category C] --json`` and ``synapse-cli plugin install SPEC --json``), so once the package is there
the server runs those commands in a subprocess and returns their JSON. Until then every route answers one
clear "not available" error (HTTP 501) instead of pretending.
"""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["available", "install", "search"]

UNAVAILABLE = (
    "the plugin registry is not available in this installation of synapse_nb (no synapse_nb.registry package); "
    "upgrade synapse_nb to search and install plugins"
)


def available() -> bool:
    """Whether the registry package is installed (checked without importing it)."""
    return importlib.util.find_spec("synapse_nb.registry") is not None


async def _cli(command: str, *args: str, timeout_s: float) -> dict[str, Any]:
    from .actions import cli_json

    return await cli_json(["plugin", command, "--json", *args], timeout_s=timeout_s, what=f"plugin {command}",
                          timeout_code="registry")  # fmt: skip


async def search(query: str, category: str | None, *, timeout_s: float = 60.0) -> dict[str, Any]:
    args = (["--category", category] if category else []) + (["--", query] if query else [])
    return await _cli("search", *args, timeout_s=timeout_s)


async def install(spec: str, *, timeout_s: float = 600.0) -> dict[str, Any]:
    return await _cli("install", "--", spec, timeout_s=timeout_s)
