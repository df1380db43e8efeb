"""Signing a folder: what is listed, what is refused, which keys may sign, and the `plugin sign` command."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.errors import ManifestError, SignatureError, UsageError
from synapse_nb.fileset import SIGNATURE_FILE, FileSetError
from synapse_nb.signing import load_developer_key, sign_folder, verify_folder

from .pki import CLIENT_AUTH, DAY, NOW, issue, new_key, root


@pytest.fixture
def plugin(make_plugin: Callable[..., Path]) -> Path:
    return make_plugin("demo-plugin")


def signed_paths(folder: Path) -> list[str]:
    envelope = json.loads((folder / SIGNATURE_FILE).read_text())
    return [f["path"] for f in json.loads(base64.b64decode(envelope["payload"]))["files"]]


def test_signing_lists_every_file_sorted_and_excludes_only_the_signature(plugin: Path) -> None:
    result = sign_folder(plugin)
    assert signed_paths(plugin) == [
        "handler.py",
        "manifest.yaml",
        "requirements.txt",
        "schemas/input_schema.json",
        "schemas/output_schema.json",
        "tests/test_demo_plugin.py",
    ]
    assert result.path == plugin / SIGNATURE_FILE
    assert (result.plugin, result.version, result.file_count) == ("demo-plugin", "0.1.0", 6)


def test_signing_the_same_folder_twice_gives_the_same_file_list(plugin: Path) -> None:
    first = sign_folder(plugin)
    paths = signed_paths(plugin)
    second = sign_folder(plugin)
    assert signed_paths(plugin) == paths
    assert first.digest == second.digest


def test_signing_creates_the_developer_key_on_first_use_and_trusts_its_ca(plugin: Path, synapse_home: Path) -> None:
    assert not (synapse_home / "keys").exists()
    result = sign_folder(plugin)
    assert result.signer_subject == load_developer_key().subject
    assert verify_folder(plugin).signer_fingerprint == result.signer_fingerprint


def test_bytecode_is_dropped_not_signed(plugin: Path) -> None:
    (plugin / "__pycache__").mkdir()
    (plugin / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    (plugin / "schemas" / "stray.pyc").write_bytes(b"\0")
    sign_folder(plugin)
    assert not [p for p in signed_paths(plugin) if "pycache" in p or p.endswith(".pyc")]


def test_non_ascii_names_are_signed_in_utf8_byte_order(plugin: Path) -> None:
    (plugin / "données.txt").write_text("x")
    (plugin / "Zeta.txt").write_text("z")
    sign_folder(plugin)
    paths = signed_paths(plugin)
    assert paths == sorted(paths, key=lambda p: p.encode("utf-8"))
    assert "données.txt" in paths
    assert verify_folder(plugin).file_count == 8


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda p: (p / "link.py").symlink_to(p / "handler.py"), "symbolic link"),
        (lambda p: os.mkfifo(p / "fifo"), "special file"),
        (lambda p: (p / "HANDLER.py").write_text("x"), "collides case-insensitively"),
        (lambda p: (p / "back\\slash.py").write_text("x"), "backslash"),
        (lambda p: (p / "cafe\u0301.py").write_text("x"), "NFC"),
        (lambda p: (p / "bell\x07.py").write_text("x"), "control character"),
    ],
)
def test_unsafe_folder_contents_are_refused_before_anything_is_written(
    plugin: Path, make_bad: Callable[[Path], object], message: str
) -> None:
    make_bad(plugin)
    with pytest.raises(FileSetError, match=message) as info:
        sign_folder(plugin)
    assert info.value.exit_code == 3
    assert not (plugin / SIGNATURE_FILE).exists()


def test_a_folder_with_an_invalid_manifest_is_not_signed(plugin: Path) -> None:
    manifest = plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("0.1.0", "one"))
    with pytest.raises(ManifestError):
        sign_folder(plugin)


def test_a_path_that_is_not_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        sign_folder(tmp_path / "missing")


def test_signing_with_an_explicit_key_and_chain(plugin: Path, tmp_path: Path) -> None:
    ca = root("Corp Root CA")
    leaf = issue("Corp Dev", ca)
    key, cert = leaf.write(tmp_path / "k", "dev", chain=[ca])
    result = sign_folder(plugin, key_path=key, cert_path=cert)
    assert result.chain == ("CN=Corp Dev", "CN=Corp Root CA")


def test_a_key_that_does_not_match_the_certificate_is_refused(plugin: Path, tmp_path: Path) -> None:
    leaf = issue("Corp Dev", root())
    _, cert = leaf.write(tmp_path / "k", "dev")
    other_key, _ = issue("Other", root()).write(tmp_path / "o", "other")
    with pytest.raises(SignatureError, match="does not belong to certificate 'CN=Corp Dev'") as info:
        sign_folder(plugin, key_path=other_key, cert_path=cert)
    assert info.value.reason == "key-mismatch"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"eku": [CLIENT_AUTH]}, "wrong-usage"),
        ({"digital_signature": False}, "wrong-usage"),
        ({"key": "rsa1024"}, "weak-key"),
        ({"not_before": NOW - 60 * DAY, "not_after": NOW - DAY}, "expired"),
        ({"not_before": NOW + DAY}, "not-yet-valid"),
    ],
)
def test_a_certificate_that_could_never_verify_does_not_sign(
    plugin: Path, tmp_path: Path, kwargs: dict[str, object], reason: str
) -> None:
    if "key" in kwargs:
        kwargs["key"] = new_key(str(kwargs["key"]))
    leaf = issue("Corp Dev", root(), **kwargs)  # type: ignore[arg-type]
    key, cert = leaf.write(tmp_path / "k", "dev")
    with pytest.raises(SignatureError) as info:
        sign_folder(plugin, key_path=key, cert_path=cert)
    assert info.value.reason == reason
    assert not (plugin / SIGNATURE_FILE).exists()


def test_a_missing_key_file_names_the_file(plugin: Path, tmp_path: Path) -> None:
    _, cert = issue("Corp Dev", root()).write(tmp_path / "k", "dev")
    with pytest.raises(SignatureError, match="cannot read private key") as info:
        sign_folder(plugin, key_path=tmp_path / "nope.pem", cert_path=cert)
    assert info.value.reason == "no-key"


def test_key_without_cert_is_a_usage_error(plugin: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="both --key and --cert"):
        sign_folder(plugin, key_path=tmp_path / "key.pem")


def test_signing_leaves_no_temporary_file_behind(plugin: Path) -> None:
    sign_folder(plugin)
    sign_folder(plugin)
    assert sorted(p.name for p in plugin.iterdir() if p.name.startswith(".")) == []


def test_plugin_sign_command_reports_the_signer_and_that_it_verifies_here(
    plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "sign", str(plugin), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["result"]["signer"]["subject"] == load_developer_key().subject
    assert out["result"]["file_count"] == 6
    assert out["meta"]["verifies_here"] is True
    assert main(["plugin", "sign", str(plugin)]) == 0
    assert capsys.readouterr().out.startswith("signed: demo-plugin 0.1.0 (6 files, digest ")


def test_plugin_sign_of_a_folder_with_a_symlink_exits_3_with_one_error_line(
    plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (plugin / "link.py").symlink_to(plugin / "handler.py")
    assert main(["plugin", "sign", str(plugin)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: demo-plugin: ")
    assert "link.py: is a symbolic link" in err[0]
