"""Plugin archives: reproducible packing, verification before extraction, and every unsafe archive refused."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from synapse_nb.cli import main as cli
from synapse_nb.errors import SignatureError
from synapse_nb.registry.archive import ArchiveError, ArchiveLimits, open_archive, pack, platforms_of
from synapse_nb.signing import verify_folder

from .registry_helpers import entries_of, hand_zip


def test_packing_the_same_signed_folder_twice_gives_the_same_bytes(signed_example: Path, tmp_path: Path) -> None:
    first = pack(signed_example, tmp_path / "a")
    second = pack(signed_example, tmp_path / "b")
    assert first.path.name == "sentiment-analyzer-1.2.0.synapse"
    assert first.path.read_bytes() == second.path.read_bytes()
    with zipfile.ZipFile(first.path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names[0] == "synapse.sig.json"
    assert names[1:] == sorted(names[1:], key=lambda n: n.encode())
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert first.platforms == ("any",)


def test_an_archive_verifies_and_unpacks_without_the_folder(signed_example: Path, tmp_path: Path) -> None:
    packed = pack(signed_example, tmp_path)
    archive = open_archive(packed.path)
    assert (archive.name, archive.version, archive.sha256) == ("sentiment-analyzer", "1.2.0", packed.sha256)
    target = archive.extract(tmp_path / "out" / "sentiment-analyzer")
    assert verify_folder(target).digest == packed.digest


def test_pack_refuses_an_unsigned_folder(
    example_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["plugin", "pack", str(example_plugin), "-o", str(tmp_path)]) == 4
    assert "unsigned: no synapse.sig.json" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.synapse"))


def test_a_tampered_archive_is_refused_with_exit_4_and_nothing_is_written(
    signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = pack(signed_example, tmp_path)
    entries = [(n, d.replace(b"0.8", b"0.1") if n == "handler.py" else d) for n, d in entries_of(packed.path)]
    bad = tmp_path / "bad.synapse"
    bad.write_bytes(hand_zip(entries))
    out = tmp_path / "out"
    assert cli(["plugin", "unpack", str(bad), "-o", str(out)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: sentiment-analyzer: tampered: handler.py modified")
    assert not out.exists()


def test_an_archive_whose_digest_differs_from_the_index_is_refused(signed_example: Path, tmp_path: Path) -> None:
    packed = pack(signed_example, tmp_path)
    with pytest.raises(SignatureError, match=r"tampered: .* but the index lists 000000") as info:
        open_archive(packed.path, expected_sha256="0" * 64)
    assert info.value.exit_code == 4


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.py", "'..' component"),
        ("schemas/../../evil.py", "'..' component"),
        ("/etc/cron.d/evil", "absolute path"),
        ("schemas\\evil.py", "backslash"),
        ("C:/Windows/evil.py", "drive letter"),
        ("tests/\x07bell.py", "control character"),
    ],
)
def test_zip_slip_names_are_refused_before_anything_is_read(
    signed_example: Path, tmp_path: Path, name: str, why: str
) -> None:
    entries = [*entries_of(pack(signed_example, tmp_path).path), (name, b"print('pwned')\n")]
    with pytest.raises(ArchiveError, match=re.escape(why)) as info:
        open_archive(hand_zip(entries))
    assert info.value.exit_code == 3
    assert f"entry {name!r}" in str(info.value)


def test_the_cli_refuses_zip_slip_with_exit_3(
    signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "slip.synapse"
    bad.write_bytes(hand_zip([*entries_of(pack(signed_example, tmp_path).path), ("../../evil.py", b"x")]))
    assert cli(["plugin", "unpack", str(bad), "-o", str(tmp_path / "out")]) == 3
    assert "entry '../../evil.py' has an empty, '.' or '..' component (path traversal)" in capsys.readouterr().err
    assert not (tmp_path / "evil.py").exists()
    assert not (tmp_path / "out").exists()


def test_symlink_entries_are_refused(signed_example: Path, tmp_path: Path) -> None:
    entries = [*entries_of(pack(signed_example, tmp_path).path), ("link.py", b"/etc/passwd")]
    with pytest.raises(ArchiveError, match=r"'link\.py' is a symbolic link"):
        open_archive(hand_zip(entries, symlink="link.py"))


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@pytest.mark.parametrize(("extra", "message"), [("handler.py", "is listed twice"), ("HANDLER.py", "collides case")])
def test_duplicate_and_case_colliding_names_are_refused(
    signed_example: Path, tmp_path: Path, extra: str, message: str
) -> None:
    entries = [*entries_of(pack(signed_example, tmp_path).path), (extra, b"x = 1\n")]
    with pytest.raises(ArchiveError, match=message):
        open_archive(hand_zip(entries))


def test_a_1_to_1000_zip_bomb_is_refused_with_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = hand_zip([("synapse.sig.json", b"{}"), ("manifest.yaml", b"x"), ("data.bin", bytes(64 << 20))])
    with zipfile.ZipFile(__import__("io").BytesIO(bomb)) as zf:
        info = zf.getinfo("data.bin")
    assert info.file_size / info.compress_size > 1000
    path = tmp_path / "bomb.synapse"
    path.write_bytes(bomb)
    assert cli(["plugin", "unpack", str(path), "-o", str(tmp_path / "out")]) == 3
    assert "refusing a possible zip bomb" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_caps_on_total_size_and_entry_count(tmp_path: Path) -> None:
    many = hand_zip([(f"f{n}.txt", b"x") for n in range(30)])
    with pytest.raises(ArchiveError, match="holds 30 entries, over the limit of 20"):
        open_archive(many, limits=ArchiveLimits(max_entries=20))
    big = hand_zip([("a.bin", bytes(range(256)) * 4096)], method=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveError, match="unpacks to more than 0 MiB"):
        open_archive(big, limits=ArchiveLimits(max_total_bytes=1000))


def test_something_that_is_not_a_zip_is_an_invalid_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="is not a zip archive"):
        open_archive(b"PK\x03\x04 certainly not a zip")


def test_platforms_are_universal_unless_native_code_is_shipped() -> None:
    assert platforms_of(["handler.py", "schemas/a.json"]) == ["any"]
    wheels = [
        "wheels/numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "wheels/numpy-2.0.0-cp311-cp311-macosx_11_0_arm64.whl",
        "wheels/six-1.0-py3-none-any.whl",
    ]
    assert platforms_of(wheels) == ["macosx_11_0_arm64", "manylinux2014_x86_64", "manylinux_2_17_x86_64"]
    assert platforms_of(["lib/fast.so", "lib/fast.pyd"]) == ["linux", "windows"]
