"""Where synapse_nb keeps its files: ``SYNAPSE_HOME`` (default ``~/.synapse``) and the folders inside it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "synapse_home"]


def synapse_home() -> Path:
    """``$SYNAPSE_HOME`` or ``~/.synapse``: config, keys, trust store, state and caches."""
    env = os.environ.get("SYNAPSE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".synapse"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old file or the new one, never a part.

    The temporary file is created 0600 by ``mkstemp``, so a private key is never readable by others, not even
    briefly, and gets ``mode`` only once it is complete.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
