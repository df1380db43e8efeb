"""What ``plugin compat OLD NEW`` accepts as OLD and NEW: a folder, a ``.synapse`` archive or ``NAME@VERSION``.

``NAME@VERSION`` (or ``NAME@RANGE``: the highest match) comes from the local history of signed versions.
A ``.synapse`` archive (``plugin pack``'s output) is opened by :func:`open_archive`, a small seam: a zip holding
the plugin folder (its files at the top, or under one folder), extracted with limits into a temporary folder.
Nothing in an archive runs; names that could escape the folder, links and oversized members are refused.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..errors import InvalidError, UsageError
from ..manifest import MANIFEST_FILE
from .contract import Contract
from .history import find_record

__all__ = ["ARCHIVE_SUFFIX", "open_archive", "open_source"]

ARCHIVE_SUFFIX = ".synapse"
MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_BYTES = 512 << 20


def _member_path(info: zipfile.ZipInfo, archive: str) -> PurePosixPath | None:
    name = info.filename
    if info.is_dir():
        return None
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise InvalidError(f"{archive}: {name!r} is a symbolic link; an archive holds regular files only")
    path = PurePosixPath(name)
    if "\\" in name or path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        raise InvalidError(f"{archive}: member name {name!r} would leave the plugin folder")
    return path


@contextmanager
def open_archive(archive: str | Path) -> Iterator[Path]:
    """The plugin folder inside a ``.synapse`` archive, extracted to a temporary folder for the ``with`` block."""
    shown = str(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidError(f"{shown}: not a .synapse archive (a zip of the plugin folder): {exc}") from None
    with zf, tempfile.TemporaryDirectory(prefix="synapse-archive-") as tmp:
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise InvalidError(f"{shown}: {len(infos)} members, over the limit of {MAX_ARCHIVE_MEMBERS}")
        members = [(info, path) for info in infos if (path := _member_path(info, shown)) is not None]
        if sum(info.file_size for info, _ in members) > MAX_ARCHIVE_BYTES:
            raise InvalidError(f"{shown}: over {MAX_ARCHIVE_BYTES >> 20} MiB once extracted")
        names = {path.as_posix() for _, path in members}
        tops = {path.parts[0] for _, path in members}
        if MANIFEST_FILE in names:
            root: tuple[str, ...] = ()
        elif len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST_FILE}" in names:
            root = (next(iter(tops)),)
        else:
            raise InvalidError(f"{shown}: holds no plugin folder (no {MANIFEST_FILE} at its top or in one folder)")
        folder = Path(tmp) / "plugin"
        folder.mkdir()
        for info, path in members:
            rel = path.parts[len(root) :]
            if path.parts[: len(root)] != root or not rel:
                continue
            target = folder.joinpath(*rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise InvalidError(f"{shown}: cannot extract {info.filename!r}: {exc}") from None
        yield folder


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
