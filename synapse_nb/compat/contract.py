"""A :class:`Contract`: what one version of a plugin promises, ready to be compared with another version.

It holds the manifest (validated, and its text to locate lines), the schemas (parsed, and their texts), the file
set (path, size, sha256 of every file: to tell an implementation change from no change at all) and the author's
``compat.yaml`` overrides. A contract is read from a plugin folder or from a record of the local history
(:mod:`.history`), which stores exactly these parts of every signed version, and nothing that runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidError, Problem, SchemaError
from ..fileset import FileSet, scan_folder
from ..manifest import MANIFEST_FILE, Manifest, load_manifest
from ..schemas import MAX_SCHEMA_BYTES, SCHEMA_DIR
from ..semver import SemVer
from ..yamlpos import YamlProblems, load_located_yaml
from .overrides import Override, load_overrides
from .schemadiff import SchemaDocs

__all__ = ["RECORD_FORMAT", "Contract"]

RECORD_FORMAT = "synapse-compat-record/1"


@dataclass
class Contract:
    """The comparable parts of one plugin version; build one with :meth:`from_folder` or :meth:`from_record`."""

    name: str
    version: SemVer
    manifest: dict[str, Any]
    manifest_text: str | None
    schemas: SchemaDocs
    files: FileSet | None
    origin: str
    folder: Path | None = None
    overrides: list[Override] = field(default_factory=list)
    _manifest_lines: Any = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def digest(self) -> str | None:
        return self.files.digest if self.files is not None else None

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        manifest: Manifest | None = None,
        files: FileSet | None = None,
        origin: str | None = None,
    ) -> Contract:
        """Read a plugin folder: its manifest is validated, its schemas read (JSON, size, draft; not checked
        against their metaschema, which ``plugin validate`` and activation do), every problem located (exit 3)."""
        root = Path(folder)
        shown = origin or str(folder)
        if manifest is None:
            manifest = load_manifest(root)
        if files is None:
            files = scan_folder(root)
        texts = _schema_texts(root, files, f"{shown}/{SCHEMA_DIR}")
        try:
            manifest_text: str | None = (root / MANIFEST_FILE).read_text("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            manifest_text = None
        return cls(
            name=manifest.name,
            version=manifest.version,
            manifest=manifest.raw,
            manifest_text=manifest_text,
            schemas=SchemaDocs(texts=texts, origin=f"{shown}/{SCHEMA_DIR}"),
            files=files,
            origin=shown,
            folder=root,
            overrides=load_overrides(root, display=f"{shown}/compat.yaml"),
        )

    @classmethod
    def from_record(cls, data: dict[str, Any], *, origin: str) -> Contract:
        """Read a history record (see :meth:`to_record`); :class:`InvalidError` if it is not one."""
        try:
            if data.get("format") != RECORD_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {RECORD_FORMAT!r}")
            texts = {str(k): str(v) for k, v in data["schemas"].items()}
            return cls(
                name=str(data["name"]),
                version=SemVer.parse(data["version"]),
                manifest=dict(data["manifest"]),
                manifest_text=data.get("manifest_text"),
                schemas=SchemaDocs(texts=texts, origin=f"{origin} {SCHEMA_DIR}"),
                files=FileSet.from_json(data["files"]) if data.get("files") is not None else None,
                origin=origin,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidError(f"{origin}: not a version record of the local history ({exc})") from None

    def to_record(self, **extra: Any) -> dict[str, Any]:
        """The history record of this version: manifest and schemas with their texts, and the file list."""
        return {
            "format": RECORD_FORMAT,
            "name": self.name,
            "version": str(self.version),
            **extra,
            "digest": self.digest,
            "files": self.files.to_json() if self.files is not None else None,
            "manifest": self.manifest,
            "manifest_text": self.manifest_text,
            "schemas": dict(self.schemas.texts),
        }

    def manifest_line(self, pointer: str) -> int | None:
        """The line of ``pointer`` in this version's manifest.yaml (None when its text is not known)."""
        if self.manifest_text is None:
            return None
        if self._manifest_lines is None:
            try:
                self._manifest_lines = load_located_yaml(self.manifest_text, file=MANIFEST_FILE)
            except YamlProblems:
                self.manifest_text = None
                return None
        line, _col = self._manifest_lines.position(pointer, prefer_key=True)
        return int(line)


def _schema_texts(root: Path, files: FileSet, shown: str) -> dict[str, str]:
    """The text of every ``schemas/*.json`` of the file set (read, size-checked and decoded; parsed later)."""
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for entry in files.entries:
        folder, _, name = entry.path.rpartition("/")
        if folder != SCHEMA_DIR or not name.endswith(".json"):
            continue
        if entry.size > MAX_SCHEMA_BYTES:
            problems.append(Problem(f"{shown}/{name}", f"file is over the {MAX_SCHEMA_BYTES >> 20} MiB limit"))
            continue
        try:
            texts[name] = (root / entry.path).read_bytes()[: MAX_SCHEMA_BYTES + 1].decode("utf-8-sig")
        except OSError as exc:
            problems.append(Problem(f"{shown}/{name}", f"cannot read: {exc.strerror}"))
        except UnicodeDecodeError:
            problems.append(Problem(f"{shown}/{name}", "not UTF-8 text; is this a binary file?"))
    if problems:
        raise SchemaError.from_problems(problems)
    return texts
