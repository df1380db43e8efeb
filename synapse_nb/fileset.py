"""The canonical file set of a plugin folder, and host-owned read-only snapshots of it.

The file set is what gets signed and what a worker runs: every regular file in the folder as
``(relative POSIX path, size, sha256)``, sorted by the UTF-8 bytes of the path, excluding only the signature
file. Bytecode (``__pycache__/``, ``*.pyc``, ``*.pyo``) is dropped, never listed: workers run with bytecode
writing off from a snapshot that holds no bytecode, so unsigned bytecode can never be loaded. So are Jupyter's
checkpoint folders (``.ipynb_checkpoints/``, written next to a file when JupyterLab opens it): editing a
manifest in JupyterLab must not make its plugin look tampered, and what is left out never reaches a worker.
Anything that could make two readers disagree about the folder is refused: symlinks, special files, names that
are not NFC-normalised UTF-8, backslashes, control characters, names that collide case-insensitively, and files
with more than one hard link (a link to a file outside the folder, such as a private key, would be signed and
readable in the jail). A file that vanishes or changes type while the folder is read is tampering (exit 4).

A :class:`Snapshot` is a content-addressed copy under ``SYNAPSE_HOME/cache/plugins/<digest>`` made by hashing
each file *while* copying it, so the digest describes exactly the bytes a worker will see (no window between
check and use). Files are 0444 and folders 0555, owned by the host user.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from .errors import InvalidError, Problem, SignatureError

__all__ = [
    "SIGNATURE_FILE",
    "FileEntry",
    "FileSet",
    "FileSetError",
    "Snapshot",
    "scan_folder",
    "snapshot_folder",
]

SIGNATURE_FILE = "synapse.sig.json"
BYTECODE_DIRS = frozenset({"__pycache__"})
SKIPPED_DIRS = BYTECODE_DIRS | {".ipynb_checkpoints"}  # never listed, signed or copied into a snapshot
BYTECODE_SUFFIXES = (".pyc", ".pyo")
MAX_FILES = 100_000
_CHUNK = 1 << 20


class FileSetError(InvalidError):
    """The folder holds something a signed file set cannot describe unambiguously.

    ``hard_links`` names the files refused only because they have more than one link: a problem of the folder
    as the user made it (exit 3), never waived and never reported as tampering.
    """

    hard_links: tuple[str, ...] = ()


def _changed(path: Path | str, plugin: str | None = None) -> SignatureError:
    return SignatureError(
        f"tampered: {path} vanished or changed while the folder was being read", plugin=plugin, reason="tampered"
    )


@dataclass(frozen=True)
class FileEntry:
    """One file of a plugin: relative POSIX path, size in bytes and hex sha256."""

    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class FileSet:
    """The sorted file entries of a plugin folder."""

    entries: tuple[FileEntry, ...]

    @cached_property  # every call's metadata carries it: hash the (immutable) entries once
    def digest(self) -> str:
        """sha256 of the canonical JSON of the entries: the identity of this exact set of bytes."""
        canonical = json.dumps([e.to_json() for e in self.entries], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def by_path(self) -> dict[str, FileEntry]:
        return {e.path: e for e in self.entries}

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> FileSet:
        return cls(tuple(FileEntry(str(d["path"]), int(d["size"]), str(d["sha256"])) for d in data))


def is_bytecode(rel_parts: tuple[str, ...]) -> bool:
    return any(p in SKIPPED_DIRS for p in rel_parts) or rel_parts[-1].endswith(BYTECODE_SUFFIXES)


def _name_problem(name: str) -> str | None:
    if "\\" in name:
        return "contains a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if unicodedata.normalize("NFC", name) != name:
        return "is not NFC-normalised Unicode"
    if name in (".", ".."):
        return "is a relative path component"
    return None


def _refuse(problems: list[Problem], plugin: str) -> FileSetError:
    error = cast(FileSetError, FileSetError.from_problems(problems, plugin=plugin))
    error.hard_links = tuple(p.file for p in problems if "hard links" in p.message)
    return error


def _walk(folder: Path, exclude: frozenset[str]) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """Every regular file as (relative POSIX path, absolute path); problems for everything refused."""
    files: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    shown = str(folder)
    stack: list[tuple[Path, tuple[str, ...]]] = [(folder, ())]
    while stack:
        current, parts = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(f"{shown}/{'/'.join(parts)}", f"cannot list: {exc.strerror}"))
            continue
        for entry in entries:
            rel_parts = (*parts, entry.name)
            rel = "/".join(rel_parts)
            if entry.is_dir(follow_symlinks=False) and entry.name in SKIPPED_DIRS:
                continue
            why = _name_problem(entry.name)
            if why is not None:
                problems.append(Problem(f"{shown}/{rel}", f"file name {entry.name!r} {why}"))
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                raise _changed(f"{shown}/{rel}") from None
            mode = info.st_mode
            if stat.S_ISLNK(mode):
                problems.append(Problem(f"{shown}/{rel}", "is a symbolic link; plugins hold regular files only"))
            elif stat.S_ISDIR(mode):
                stack.append((Path(entry.path), rel_parts))
            elif not stat.S_ISREG(mode):
                problems.append(Problem(f"{shown}/{rel}", "is a special file (device, FIFO or socket)"))
            elif rel in exclude or is_bytecode(rel_parts):
                continue
            elif info.st_nlink > 1:
                problems.append(
                    Problem(
                        f"{shown}/{rel}",
                        f"has {info.st_nlink} hard links; a plugin file must have exactly one "
                        "(a hard link could expose another file, such as a key, to the jail)",
                    )
                )
            else:
                files.append((rel, Path(entry.path)))
            if len(files) > MAX_FILES:
                problems.append(Problem(shown, f"holds more than {MAX_FILES} files"))
                return files, problems
    seen: dict[str, str] = {}
    for rel, _ in files:
        key = rel.casefold()
        if key in seen:
            problems.append(Problem(f"{shown}/{rel}", f"collides case-insensitively with {seen[key]!r}"))
        seen.setdefault(key, rel)
    files.sort(key=lambda item: item[0].encode("utf-8"))
    return files, problems


def _open_regular(path: Path) -> int:
    """A read descriptor on the regular file ``path`` (never through a symlink); tampering if it changed."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        raise _changed(path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise _changed(path)
    return fd


def _hash_file(path: Path, copy_to: Path | None = None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    fd = _open_regular(path)
    try:
        out = open(copy_to, "xb") if copy_to is not None else None  # noqa: SIM115 - closed below
        try:
            while chunk := os.read(fd, _CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
    finally:
        os.close(fd)
    return size, digest.hexdigest()


def scan_folder(folder: str | Path, *, exclude: tuple[str, ...] = (SIGNATURE_FILE,)) -> FileSet:
    """The canonical file set of ``folder``; :class:`FileSetError` lists everything refused."""
    root = Path(folder)
    files, problems = _walk(root, frozenset(exclude))
    if problems:
        raise _refuse(problems, root.resolve().name)
    entries = []
    for rel, path in files:
        size, sha = _hash_file(path)
        entries.append(FileEntry(rel, size, sha))
    return FileSet(tuple(entries))


@dataclass(frozen=True)
class Snapshot:
    """A read-only, content-addressed copy of a plugin folder.

    ``signature`` holds the bytes of the *source* folder's signature file as read when the snapshot was taken
    (None when it has none; ``signature_error`` says why it could not be read). Verification uses these bytes,
    never the copy in the shared snapshot folder, which another folder with the same content may replace.
    """

    path: Path
    files: FileSet
    signature: bytes | None = None
    signature_error: str | None = None

    @property
    def digest(self) -> str:
        return self.files.digest


def _make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


IN_MEMORY_SNAPSHOT_BYTES = 16 << 20


def _read_regular(path: Path) -> bytes:
    """All bytes of a regular file, opened without following symlinks."""
    fd = _open_regular(path)
    try:
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def snapshot_folder(folder: str | Path, cache_root: Path) -> Snapshot:
    """Copy ``folder`` into ``cache_root/<digest>``, hashing exactly the bytes that are copied.

    An existing snapshot with the same digest is reused without copying. The signature file, if present, is
    copied along (it is not part of the digest) so that verification can run against the copy itself.
    Plugins up to 16 MiB are read once into memory, so that an unchanged plugin costs one read and no write;
    larger ones are streamed into a staging folder while being hashed.
    """
    root = Path(folder)
    files, problems = _walk(root, frozenset({SIGNATURE_FILE}))
    if problems:
        raise _refuse(problems, root.resolve().name)
    cache_root.mkdir(parents=True, exist_ok=True)
    signature, signature_error = _read_signature_file(root / SIGNATURE_FILE)
    try:
        total = sum(path.stat().st_size for _, path in files)
    except OSError:
        raise _changed(root) from None
    if total <= IN_MEMORY_SNAPSHOT_BYTES:
        contents = {rel: _read_regular(path) for rel, path in files}
        fileset = FileSet(
            tuple(FileEntry(rel, len(data), hashlib.sha256(data).hexdigest()) for rel, data in contents.items())
        )
        final = cache_root / fileset.digest
        if final.exists():
            _refresh_signature(final, signature)
        else:
            _publish(cache_root, fileset, signature, lambda rel, target: target.write_bytes(contents[rel]))
    else:
        fileset = _stream_snapshot(cache_root, files, signature)
    return Snapshot(cache_root / fileset.digest, fileset, signature, signature_error)


MAX_SIGNATURE_BYTES = 4 << 20


def _read_signature_file(path: Path) -> tuple[bytes | None, str | None]:
    """(bytes, None), (None, None) when absent, or (None, why it cannot be used)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if stat.S_ISLNK(info.st_mode):
        return None, "is a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return None, "is not a regular file"
    if info.st_size > MAX_SIGNATURE_BYTES:
        return None, f"is over {MAX_SIGNATURE_BYTES >> 20} MiB"
    return _read_regular(path), None


def _stream_snapshot(cache_root: Path, files: list[tuple[str, Path]], signature: bytes | None) -> FileSet:
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_root))
    try:
        entries = []
        for rel, path in files:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            size, sha = _hash_file(path, copy_to=target)
            entries.append(FileEntry(rel, size, sha))
        fileset = FileSet(tuple(entries))
        final = cache_root / fileset.digest
        if final.exists():
            _remove_tree(staging)
            _refresh_signature(final, signature)
        else:
            _publish(cache_root, fileset, signature, None, staging=staging)
        return fileset
    except BaseException:
        _remove_tree(staging)
        raise


def _publish(
    cache_root: Path,
    fileset: FileSet,
    signature: bytes | None,
    write: Callable[[str, Path], object] | None,
    *,
    staging: Path | None = None,
) -> None:
    """Fill a staging folder (unless given filled), make it read-only and rename it to its digest."""
    final = cache_root / fileset.digest
    staging = staging or Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_root))
    try:
        if write is not None:
            for entry in fileset.entries:
                target = staging / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                write(entry.path, target)
        if signature is not None:
            (staging / SIGNATURE_FILE).write_bytes(signature)
        _make_read_only(staging)
        try:
            staging.rename(final)
        except OSError:  # another process published identical content first
            _remove_tree(staging)
            _refresh_signature(final, signature)
    except BaseException:
        _remove_tree(staging)
        raise


def _refresh_signature(final: Path, signature: bytes | None) -> None:
    """Same bytes already published: make the snapshot's signature copy the folder's current one."""
    target = final / SIGNATURE_FILE
    try:
        current = target.read_bytes()
    except OSError:
        current = None
    if current == signature:
        return
    os.chmod(final, 0o755)
    try:
        if signature is not None:
            tmp = final / (SIGNATURE_FILE + ".tmp")
            tmp.write_bytes(signature)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        elif current is not None:
            target.unlink()
    finally:
        os.chmod(final, 0o555)


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    for dirpath, _dirnames, _filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
