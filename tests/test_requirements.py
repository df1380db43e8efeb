"""requirements.txt: PEP 508 lines, the offending line named, pip's hash-checking rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from synapse_nb.errors import RequirementsError
from synapse_nb.requirements import load_requirements, parse_requirements

SHA = "sha256:" + "ab" * 32


def test_requirements_with_extras_markers_comments_and_continuations() -> None:
    reqs = parse_requirements(
        "# models\nnumpy>=1.26  # arrays\n\nscikit-learn[alldeps]==1.5.0 ; python_version >= '3.10'\npandas \\\n  >=2\n"
    )
    assert [(r.line, r.name, r.specifier) for r in reqs] == [
        (2, "numpy", ">=1.26"),
        (4, "scikit-learn", "==1.5.0"),
        (5, "pandas", ">=2"),
    ]
    assert reqs.lines[1].extras == ("alldeps",)
    assert reqs.lines[1].marker == 'python_version >= "3.10"'


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(RequirementsError, match=r"requirements.txt:3: 'numpy >= = 1' is not a PEP 508 requirement"):
        parse_requirements("pandas\nrequests\nnumpy >= = 1\n")


def test_index_options_and_includes_are_refused() -> None:
    with pytest.raises(RequirementsError) as info:
        parse_requirements("-i https://evil.example/simple\n-r other.txt\n-e .\nnumpy\n")
    assert [p.line for p in info.value.problems] == [1, 2, 3]


def test_direct_urls_are_refused() -> None:
    with pytest.raises(RequirementsError, match="direct URL references are not allowed"):
        parse_requirements("pkg @ https://example.com/pkg-1.0-py3-none-any.whl\n")


def test_hashes_are_honoured_and_then_required_for_every_line() -> None:
    reqs = parse_requirements(f"numpy==2.0.0 --hash={SHA}\n")
    assert reqs.hash_pinned
    assert reqs.lines[0].hashes == (SHA,)
    with pytest.raises(RequirementsError, match=r":2: 'pandas' has no --hash, but other lines do"):
        parse_requirements(f"numpy==2.0.0 --hash={SHA}\npandas==2.2.0\n")
    with pytest.raises(RequirementsError, match=r":1: 'numpy' must be pinned with == in hash-checking mode"):
        parse_requirements(f"numpy>=2 --hash={SHA}\n")


def test_a_missing_requirements_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError, match=r"requirements\.txt: missing"):
        load_requirements(tmp_path)


def test_normalized_spelling_is_stable() -> None:
    [a] = parse_requirements("Scikit_Learn[b,a] == 1.5\n")
    [b] = parse_requirements("scikit-learn[a,b]==1.5\n")
    assert a.normalized == b.normalized == "scikit-learn[a,b]==1.5"
