"""Where synapse_nb keeps its files: ``SYNAPSE_HOME`` (default ``~/.synapse``) and the folders inside it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["synapse_home"]


def synapse_home() -> Path:
    """``$SYNAPSE_HOME`` or ``~/.synapse``: config, keys, trust store, state and caches."""
    env = os.environ.get("SYNAPSE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".synapse"
