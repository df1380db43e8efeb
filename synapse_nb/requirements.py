"""requirements.txt: PEP 508 lines with line numbers, in the subset of pip's format a signed plugin may use.

Accepted per line: a PEP 508 requirement (extras, version specifiers, environment markers) and ``--hash``
options, with comments and ``\\`` continuations as pip reads them. Refused, with the line named: options that pick
an index or a file (``-i``, ``-f``, ``-r``, ``-e``...), direct URL or path references (a signed plugin must not
pull code from elsewhere), and, as pip does, any unhashed or unpinned line once one line carries ``--hash``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Problem, RequirementsError

__all__ = ["REQUIREMENTS_FILE", "RequirementLine", "Requirements", "load_requirements", "parse_requirements"]

REQUIREMENTS_FILE = "requirements.txt"
MAX_REQUIREMENTS_BYTES = 256 * 1024

_HASH = re.compile(r"^(sha256|sha384|sha512):[0-9a-fA-F]{64,128}$")
_COMMENT = re.compile(r"(^|\s+)#.*$")


@dataclass(frozen=True)
class RequirementLine:
    """One requirement: where it is, as written, parsed, and its allowed hashes."""

    line: int
    text: str
    name: str
    specifier: str
    extras: tuple[str, ...] = ()
    marker: str | None = None
    hashes: tuple[str, ...] = ()

    @property
    def normalized(self) -> str:
        """A canonical spelling, used to key dependency environments."""
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        marker = f"; {self.marker}" if self.marker else ""
        hashes = "".join(f" --hash={h}" for h in sorted(self.hashes))
        return f"{self.name}{extras}{self.specifier}{marker}{hashes}"


@dataclass(frozen=True)
class Requirements:
    """All requirement lines of a plugin, in file order."""

    lines: tuple[RequirementLine, ...] = ()
    file: str = REQUIREMENTS_FILE
    hash_pinned: bool = field(default=False)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join ``\\`` continuations and strip comments, keeping each logical line's first line number."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, physical in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = _COMMENT.sub("", physical)
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical = (pending + stripped).strip()
        pending = ""
        if logical:
            out.append((start, logical))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _split_options(logical: str) -> tuple[str, list[str]]:
    """Split ``name>=1 --hash=sha256:... --hash sha256:...`` into the requirement and its options."""
    parts = re.split(r"\s+(?=--?[A-Za-z])", logical)
    return parts[0].strip(), [p.strip() for p in parts[1:]]


def parse_requirements(text: str, *, file: str = REQUIREMENTS_FILE) -> Requirements:
    """Parse requirements text; :class:`RequirementsError` names every bad line as ``file:LINE: ...``."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    problems: list[Problem] = []
    lines: list[RequirementLine] = []
    for number, logical in _logical_lines(text):
        if logical.startswith("-"):
            option = logical.split()[0].split("=")[0]
            problems.append(
                Problem(
                    file,
                    f"option {option!r} is not allowed in a plugin's requirements.txt "
                    "(indexes, wheelhouses and includes come from synapse configuration)",
                    number,
                )
            )
            continue
        spec, options = _split_options(logical)
        hashes: list[str] = []
        bad_option = False
        for option in options:
            name, _, value = option.partition("=")
            if name == "--hash" and not value:
                name, _, value = option.partition(" ")
            if name != "--hash":
                problems.append(Problem(file, f"option {name!r} is not allowed after a requirement", number))
                bad_option = True
                continue
            if not _HASH.match(value.strip()):
                problems.append(
                    Problem(file, f"--hash {value.strip()!r} is not sha256:<hex> (or sha384/sha512)", number)
                )
                bad_option = True
                continue
            hashes.append(value.strip().lower())
        if bad_option:
            continue
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            detail = str(exc).splitlines()[0]
            problems.append(Problem(file, f"{spec!r} is not a PEP 508 requirement: {detail}", number))
            continue
        if req.url:
            problems.append(
                Problem(
                    file,
                    f"{spec!r}: direct URL references are not allowed; name a package and version",
                    number,
                )
            )
            continue
        lines.append(
            RequirementLine(
                line=number,
                text=logical,
                name=canonicalize_name(req.name),
                specifier=str(req.specifier),
                extras=tuple(sorted(req.extras)),
                marker=str(req.marker) if req.marker else None,
                hashes=tuple(hashes),
            )
        )
    hash_pinned = any(r.hashes for r in lines)
    if hash_pinned:
        for r in lines:
            if not r.hashes:
                problems.append(
                    Problem(
                        file,
                        f"{r.name!r} has no --hash, but other lines do (hash-checking mode: all or none)",
                        r.line,
                    )
                )
            elif not re.fullmatch(r"===?[^,;]+", r.specifier):
                problems.append(
                    Problem(
                        file,
                        f"{r.name!r} must be pinned with == in hash-checking mode, got {r.specifier!r}",
                        r.line,
                    )
                )
    if problems:
        raise RequirementsError.from_problems(sorted(problems, key=lambda p: p.line or 0))
    return Requirements(lines=tuple(lines), file=file, hash_pinned=hash_pinned)


def load_requirements(plugin_dir: str | Path, *, display: str | None = None) -> Requirements:
    """Read ``plugin_dir/requirements.txt``; a missing file is an error (every plugin declares its needs)."""
    path = Path(plugin_dir) / REQUIREMENTS_FILE
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RequirementsError.from_problems(
            [Problem(shown, "missing; every plugin has a requirements.txt (it may be empty)")]
        ) from None
    except OSError as exc:
        raise RequirementsError.from_problems([Problem(shown, f"cannot read: {exc.strerror}")]) from exc
    if len(raw) > MAX_REQUIREMENTS_BYTES:
        raise RequirementsError.from_problems([Problem(shown, "file is over the 256 KiB limit")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequirementsError.from_problems([Problem(shown, "not UTF-8 text")]) from None
    return parse_requirements(text, file=shown)
