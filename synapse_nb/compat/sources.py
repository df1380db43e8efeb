"""What ``plugin compat OLD NEW`` accepts as OLD and NEW: a folder, a ``.synapse`` archive or ``NAME@VERSION``.

``NAME@VERSION`` (or ``NAME@RANGE``: the highest match) comes from the local history of signed versions.
A ``.synapse`` archive (``plugin pack``'s output) is opened by :func:`open_archive`, a small seam over the
registry's reader (:func:`synapse_nb.registry.archive.open_archive`): sizes, names and kinds of entries checked,
the signature verified against the trust store, then extracted into a temporary folder. Nothing in it runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import UsageError
from .contract import Contract
from .history import find_record

__all__ = ["ARCHIVE_SUFFIX", "open_archive", "open_source"]

ARCHIVE_SUFFIX = ".synapse"


@contextmanager
def open_archive(archive: str | Path) -> Iterator[Path]:
    """The plugin folder inside a verified ``.synapse`` archive, extracted for the ``with`` block."""
    from ..registry.archive import open_archive as read_archive

    verified = read_archive(archive)
    with tempfile.TemporaryDirectory(prefix="synapse-archive-") as tmp:
        yield verified.extract(Path(tmp) / verified.name)


@contextmanager
def open_source(spec: str) -> Iterator[Contract]:
    """The :class:`Contract` named by a ``plugin compat`` argument, for the ``with`` block."""
    path = Path(spec)
    if path.is_dir():
        yield Contract.from_folder(path)
    elif path.suffix == ARCHIVE_SUFFIX and path.is_file():
        with open_archive(path) as folder:
            yield Contract.from_folder(folder, origin=spec)
    elif path.exists():
        raise UsageError(f"{spec!r} is neither a plugin folder nor a {ARCHIVE_SUFFIX} archive")
    elif "@" in spec and "/" not in spec:
        yield find_record(spec).contract()
    else:
        raise UsageError(f"{spec!r}: no such folder or archive, and not NAME@VERSION from the local history")
