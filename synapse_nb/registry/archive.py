"""Plugin archives: ``NAME-VERSION.synapse``, a reproducible zip of a signed plugin folder.

An archive holds exactly a signed plugin folder: ``synapse.sig.json`` first, then every file of the signed file
set in its canonical order (sorted by the UTF-8 bytes of the path). Nothing else, so unpacking gives a folder
that ``plugin verify`` accepts as is, and the archive verifies without the folder it came from. The same folder
always packs to the same bytes: fixed timestamps (1980-01-01), fixed modes (0644 regular files), no directory
entries, no extra fields, and a deterministic choice of compression per file (already-compressed formats are
stored; anything deflate does not shrink is stored too).

Reading is for untrusted bytes and happens entirely before anything is written (:func:`open_archive`): the zip's
directory is checked first (entry count, declared sizes and compression ratios, names: no ``..``, absolute
paths, backslashes, drive letters, control characters, duplicates or case collisions; no symlinks, special
files or encrypted entries), then every entry is decompressed under those caps and hashed, and the signature is
verified against that file set and the manifest inside (the same checks as ``plugin verify``). Only a
:class:`VerifiedArchive` can be extracted, into a fresh staging folder that is renamed into place.

Platforms: a plugin is ``any`` (universal) unless it ships native code: platform wheels add their platform tags
(``manylinux_2_17_x86_64``, ``macosx_11_0_arm64``, ``win_amd64``...), loose ``.so``/``.dylib``/``.pyd``/``.dll``
files add ``linux``/``macos``/``windows``. Requirements are resolved per host at activation (see environments),
so they do not make a plugin platform-specific.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InvalidError, ManifestError, SignatureError, UsageError
from ..fileset import SIGNATURE_FILE, FileEntry, FileSet
from ..manifest import MANIFEST_FILE, Manifest, load_manifest, parse_manifest
from ..signing.envelope import MAX_ENVELOPE_BYTES
from ..signing.trust import TrustStore
from ..signing.verify import Verification, read_signature, verify_fileset

__all__ = [
    "ARCHIVE_SUFFIX",
    "UNIVERSAL",
    "ArchiveError",
    "ArchiveLimits",
    "PackResult",
    "VerifiedArchive",
    "archive_name",
    "build_archive",
    "open_archive",
    "pack",
    "platforms_of",
]

ARCHIVE_SUFFIX = ".synapse"
UNIVERSAL = "any"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644
_UNIX = 3
_LEVEL = 6
_CHUNK = 1 << 20
_IN_MEMORY_BYTES = 64 << 20
# Formats that are compressed already: deflating them again only costs time.
_STORED_SUFFIXES = (".whl", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".npz", ".png", ".jpg", ".jpeg", ".gif",
                    ".webp", ".onnx", ".pt", ".safetensors", ".synapse")  # fmt: skip
_NATIVE = {".so": "linux", ".dylib": "macos", ".pyd": "windows", ".dll": "windows"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArchiveError(InvalidError):
    """The archive is not one we unpack: malformed zip, unsafe names, links, or over a size, count or ratio cap."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied to an archive before and while it is read (all checked before anything is written)."""

    max_archive_bytes: int = 256 << 20
    max_entries: int = 20_000
    max_total_bytes: int = 1 << 30
    # Uncompressed/compressed, for entries of at least ``ratio_floor_bytes`` (tiny files may compress very well).
    max_ratio: int = 100
    ratio_floor_bytes: int = 64 << 10


def archive_name(name: str, version: str) -> str:
    """``NAME-VERSION.synapse``."""
    return f"{name}-{version}{ARCHIVE_SUFFIX}"


def platforms_of(paths: list[str] | tuple[str, ...]) -> list[str]:
    """The platforms a plugin with these files runs on: ``["any"]``, or the tags its native files need."""
    tags: set[str] = set()
    for path in paths:
        base = path.rsplit("/", 1)[-1].lower()
        if base.endswith(".whl"):
            parts = base[: -len(".whl")].split("-")
            if len(parts) >= 5:
                tags.update(tag for tag in parts[-1].split(".") if tag != UNIVERSAL)
            continue
        for suffix, platform in _NATIVE.items():
            if base.endswith(suffix) or (suffix == ".so" and ".so." in base):
                tags.add(platform)
    return sorted(tags) or [UNIVERSAL]


# -- packing ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PackResult:
    """An archive written by :func:`pack`."""

    path: Path
    name: str
    version: str
    sha256: str
    size: int
    platforms: tuple[str, ...]
    digest: str
    file_count: int
    signer: str

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.path),
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "platforms": list(self.platforms),
            "digest": self.digest,
            "file_count": self.file_count,
            "signer": self.signer,
        }


def _read_exact(path: Path, entry: FileEntry) -> bytes:
    """The bytes of ``path``, which must still be exactly the signed ``entry`` (no symlink followed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SignatureError(f"tampered: {entry.path} is no longer a regular file", reason="tampered")
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise SignatureError(f"tampered: {entry.path} changed while it was being packed", reason="tampered")
    return data


def _compression(path: str, data: bytes) -> int:
    if len(data) < 64 or path.lower().endswith(_STORED_SUFFIXES):
        return zipfile.ZIP_STORED
    # Deterministic: a given file always gets the same method. Deflate a sample before paying for the whole file.
    sample = data[: 256 << 10]
    if len(zlib.compress(sample, 1)) >= len(sample) * 0.97:
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


def _entry(path: str, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=_FIXED_TIME)
    info.external_attr = _FILE_MODE << 16
    info.create_system = _UNIX
    info.compress_type = method
    return info


def build_archive(folder: Path, files: FileSet, signature: bytes) -> bytes:
    """The archive bytes for ``folder``'s ``files`` (as verified) and its ``signature``; reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(_entry(SIGNATURE_FILE, zipfile.ZIP_DEFLATED), signature, compresslevel=_LEVEL)
        for entry in files.entries:
            data = _read_exact(folder / entry.path, entry)
            method = _compression(entry.path, data)
            zf.writestr(_entry(entry.path, method), data, compresslevel=_LEVEL if method else None)
    return buffer.getvalue()


def pack(
    folder: Path | str,
    out_dir: Path | str | None = None,
    *,
    trust: TrustStore | None = None,
    now: dt.datetime | None = None,
) -> PackResult:
    """Verify the signed plugin in ``folder`` and write ``out_dir/NAME-VERSION.synapse`` (default: the cwd).

    The folder must be signed (``plugin sign``) and verify against ``trust`` (default: the local trust store),
    so that an archive never carries a signature that does not match its files.
    """
    from ..fileset import scan_folder
    from ..paths import atomic_write

    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{str(root)!r} is not a folder; pass the plugin folder that holds manifest.yaml")
    manifest = load_manifest(root)
    signature = read_signature(root, plugin=manifest.name)
    files = scan_folder(root)
    verification = verify_fileset(files, signature, plugin=manifest.name, manifest=manifest, trust=trust, now=now)
    data = build_archive(root, files, signature)
    target_dir = Path(out_dir) if out_dir is not None else Path.cwd()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / archive_name(manifest.name, str(manifest.version))
    atomic_write(target, data)
    return PackResult(
        path=target,
        name=manifest.name,
        version=str(manifest.version),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        platforms=tuple(platforms_of([e.path for e in files.entries])),
        digest=files.digest,
        file_count=len(files.entries),
        signer=verification.signer_subject,
    )


# -- reading -----------------------------------------------------------------------------------------------------
def _name_problem(name: str) -> str | None:
    """Why an entry name is unsafe to extract, or ``None``."""
    if not name:
        return "is empty"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if _CONTROL.search(name):
        return "contains a control character"
    if not unicodedata.is_normalized("NFC", name):
        return "is not NFC-normalised"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' component (path traversal)"
    if len(name.encode("utf-8")) > 1024:
        return "is longer than 1024 bytes"
    return None


def _kind_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        return "is a symbolic link; archives hold regular files only"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a special file (device, FIFO or socket)"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"uses compression method {info.compress_type} (only stored and deflate are accepted)"
    return None


def _check_directory(zf: zipfile.ZipFile, limits: ArchiveLimits, shown: str) -> list[zipfile.ZipInfo]:
    """The file entries to read, after every check that needs only the zip's central directory."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ArchiveError(f"{shown}: holds {len(infos)} entries, over the limit of {limits.max_entries}")
    files: list[zipfile.ZipInfo] = []
    folded: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.filename
        is_dir = name.endswith("/")
        why = _name_problem(name[:-1] if is_dir else name) or _kind_problem(info)
        if why is not None:
            raise ArchiveError(f"{shown}: entry {name!r} {why}; refusing to unpack")
        if is_dir or stat.S_ISDIR(info.external_attr >> 16):
            if info.file_size:
                raise ArchiveError(f"{shown}: directory entry {name!r} has contents")
            continue
        key = name.casefold()
        if key in folded:
            what = "is listed twice" if folded[key] == name else f"collides case-insensitively with {folded[key]!r}"
            raise ArchiveError(f"{shown}: entry {name!r} {what}; refusing to unpack")
        folded[key] = name
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"{shown}: unpacks to more than {limits.max_total_bytes >> 20} MiB (limit max_total_bytes); "
                "refusing a possible zip bomb"
            )
        if (
            info.file_size >= limits.ratio_floor_bytes
            and info.file_size > max(1, info.compress_size) * limits.max_ratio
        ):
            ratio = info.file_size // max(1, info.compress_size)
            raise ArchiveError(
                f"{shown}: entry {name!r} expands {ratio}:1 ({info.compress_size} -> {info.file_size} bytes), over "
                f"the {limits.max_ratio}:1 limit; refusing a possible zip bomb"
            )
        files.append(info)
    parents = {str(p) for info in files for p in PurePosixPath(info.filename).parents if str(p) != "."}
    clash = sorted(parents & set(folded.values()))
    if clash:
        raise ArchiveError(f"{shown}: {clash[0]!r} is both a file and a folder; refusing to unpack")
    return files


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, keep: bool) -> tuple[FileEntry, bytes | None]:
    digest = hashlib.sha256()
    size = 0
    chunks: list[bytes] = []
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                if size > info.file_size:  # zipfile stops at the declared size; never trust that alone
                    raise ArchiveError(f"{shown}: entry {info.filename!r} is larger than its declared size")
                digest.update(chunk)
                if keep:
                    chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ArchiveError(f"{shown}: entry {info.filename!r} cannot be read ({exc})") from exc
    return FileEntry(info.filename, size, digest.hexdigest()), (b"".join(chunks) if keep else None)


@dataclass
class VerifiedArchive:
    """An archive whose bytes, names, sizes and signature all checked out; :meth:`extract` writes it out."""

    name: str
    version: str
    sha256: str
    size: int
    files: FileSet
    platforms: tuple[str, ...]
    manifest: Manifest
    verification: Verification
    signature: bytes
    _data: bytes = field(repr=False)
    _contents: dict[str, bytes] | None = field(default=None, repr=False)

    @property
    def digest(self) -> str:
        return self.files.digest

    @property
    def data(self) -> bytes:
        """The archive's bytes, exactly as verified."""
        return self._data

    def _iter_contents(self) -> Iterator[tuple[FileEntry, bytes]]:
        if self._contents is not None:
            for entry in self.files.entries:
                yield entry, self._contents[entry.path]
            return
        with zipfile.ZipFile(io.BytesIO(self._data)) as zf:
            for entry in self.files.entries:
                found, data = _read_entry(zf, zf.getinfo(entry.path), self.name, keep=True)
                if found != entry or data is None:  # the bytes are in memory and were verified; never expected
                    raise ArchiveError(f"{self.name}: entry {entry.path!r} changed between two reads")
                yield entry, data

    def extract(self, target: Path | str) -> Path:
        """Write the verified files and the signature to the new folder ``target`` (made atomically)."""
        final = Path(target)
        if final.exists():
            raise UsageError(f"{str(final)!r} already exists; remove it or choose another target")
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final.parent))
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            for rel, data in [*((e.path, d) for e, d in self._iter_contents()), (SIGNATURE_FILE, self.signature)]:
                path = staging.joinpath(*rel.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, flags, 0o644)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            os.chmod(staging, 0o755)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "platforms": list(self.platforms),
            "digest": self.digest,
            "file_count": len(self.files.entries),
            "signer": self.verification.signer_subject,
        }


def _load_bytes(source: bytes | Path | str, limits: ArchiveLimits) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        data, shown = source, "archive"
    else:
        path = Path(source)
        shown = str(path)
        try:
            with path.open("rb") as fh:
                data = fh.read(limits.max_archive_bytes + 1)
        except FileNotFoundError:
            raise UsageError(f"no archive at {shown!r}") from None
        except OSError as exc:
            raise UsageError(f"cannot read archive {shown!r}: {exc.strerror}") from exc
    if len(data) > limits.max_archive_bytes:
        raise ArchiveError(f"{shown}: is over the {limits.max_archive_bytes >> 20} MiB archive size limit")
    return data, shown


def open_archive(
    source: bytes | Path | str,
    *,
    trust: TrustStore | None = None,
    expected_sha256: str | None = None,
    expected: tuple[str, str] | None = None,
    limits: ArchiveLimits | None = None,
    now: dt.datetime | None = None,
) -> VerifiedArchive:
    """Check and verify an archive entirely in memory; nothing is written.

    ``expected_sha256`` (from a registry index) must match the archive's bytes, ``expected`` its (name,
    version). Raises :class:`ArchiveError` (exit 3) for unsafe or oversized content, :class:`SignatureError`
    (exit 4) for a digest, signature, trust or file-set mismatch, :class:`ManifestError` for a bad manifest.
    """
    caps = limits or ArchiveLimits()
    data, shown = _load_bytes(source, caps)
    sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise SignatureError(
            f"tampered: {shown} has sha256 {sha256[:16]}..., but the index lists {expected_sha256[:16]}...",
            plugin=expected[0] if expected else None,
            reason="tampered",
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError) as exc:
        raise ArchiveError(f"{shown}: is not a zip archive ({exc})") from exc
    with zf:
        infos = _check_directory(zf, caps, shown)
        sig_info = next((i for i in infos if i.filename == SIGNATURE_FILE), None)
        if sig_info is None:
            raise SignatureError(f"unsigned: {shown} holds no {SIGNATURE_FILE}", reason="unsigned")
        if sig_info.file_size > MAX_ENVELOPE_BYTES:
            raise ArchiveError(f"{shown}: {SIGNATURE_FILE} is over {MAX_ENVELOPE_BYTES >> 20} MiB")
        keep = sum(i.file_size for i in infos) <= _IN_MEMORY_BYTES
        entries: list[FileEntry] = []
        contents: dict[str, bytes] = {}
        signature = b""
        for info in infos:
            entry, body = _read_entry(zf, info, shown, keep=keep or info is sig_info)
            if info is sig_info:
                signature = body or b""
                continue
            entries.append(entry)
            if body is not None:
                contents[entry.path] = body
    entries.sort(key=lambda e: e.path.encode("utf-8"))
    files = FileSet(tuple(entries))
    manifest_bytes = contents.get(MANIFEST_FILE)
    if manifest_bytes is None and any(e.path == MANIFEST_FILE for e in entries):
        with zipfile.ZipFile(io.BytesIO(data)) as zf2:
            manifest_bytes = zf2.read(MANIFEST_FILE)
    if manifest_bytes is None:
        raise ManifestError(f"{shown}: holds no {MANIFEST_FILE}; it is not a plugin archive")
    manifest = parse_manifest(manifest_bytes, file=f"{shown}:{MANIFEST_FILE}")
    verification = verify_fileset(files, signature, plugin=manifest.name, manifest=manifest, trust=trust, now=now)
    if expected is not None and (manifest.name, str(manifest.version)) != expected:
        raise SignatureError(
            f"version-mismatch: the index lists {expected[0]} {expected[1]}, but {shown} holds {manifest.name} "
            f"{manifest.version}",
            plugin=expected[0],
            reason="version-mismatch",
        )
    return VerifiedArchive(
        name=manifest.name,
        version=str(manifest.version),
        sha256=sha256,
        size=len(data),
        files=files,
        platforms=tuple(platforms_of([e.path for e in entries])),
        manifest=manifest,
        verification=verification,
        signature=signature,
        _data=data,
        _contents=contents if keep else None,
    )
