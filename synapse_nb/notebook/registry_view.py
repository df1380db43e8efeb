"""Registry operations for notebooks: what ``%synapse search | install | publish`` return and show.

Each function calls the same :mod:`synapse_nb.registry.operations` as the CLI and returns something a notebook
renders well: a pandas DataFrame for search results and installed plugins, a one-row DataFrame for an install
or a publish (its notes, such as the macOS/Windows isolation line, go to ``warn``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SEARCH_COLUMNS", "install", "installed", "publish", "search"]

SEARCH_COLUMNS = ["name", "version", "category", "description", "registry"]


def search(
    query: str | None = None, *, category: str | None = None, registry: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """``%synapse search [Q] [--category C]``: one row per plugin (name, latest version, category, ...)."""
    import pandas as pd

    from ..registry.operations import search as run

    hits = run(query, category=category, registry=registry, warn=warn)
    return pd.DataFrame([{k: h.to_json()[k] for k in SEARCH_COLUMNS} for h in hits], columns=SEARCH_COLUMNS)


def install(
    spec: str, *, registry: str | None = None, move_pin: bool = False, warn: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """``%synapse install SPEC``: install and return the installed version as one row (with its folder)."""
    import pandas as pd

    from ..registry.operations import install as run

    result = run(spec, registry=registry, move_pin=move_pin, warn=warn)
    for note in result.notes:
        if warn is not None:
            warn(note)
    row: dict[str, Any] = result.to_json()
    row.pop("notes", None)
    return pd.DataFrame([row])


def publish(path: str | Path, *, registry: str) -> pd.DataFrame:
    """``%synapse publish NAME``: upload a plugin folder or archive; the registry's answer as one row."""
    import pandas as pd

    from ..registry.operations import publish as run

    answer = run(path, registry=registry)
    answer.pop("compat", None)
    return pd.DataFrame([answer])


def installed() -> pd.DataFrame:
    """The plugins installed under ``$SYNAPSE_HOME/plugins``."""
    import pandas as pd

    from ..registry.installed import list_installed

    rows = [p.to_json() for p in list_installed()]
    return pd.DataFrame(rows, columns=["name", "version", "registry", "active", "path", "sha256", "installed_at"])
