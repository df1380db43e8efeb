"""The activation policy: refuse by default; `--insecure-allow-unsigned` warns on every use and marks results."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.activation import ActivationOptions, prepare
from synapse_nb.errors import SignatureError
from synapse_nb.fileset import FileSetError, Snapshot, snapshot_folder
from synapse_nb.signing import INSECURE_FLAG, SignatureCheck, check_activation, load_developer_key, sign_folder


def verified_snapshot(folder: Path, **options: Any) -> tuple[Snapshot, SignatureCheck]:
    """The snapshot and signature check that activation (the production path) establishes for ``folder``."""
    plan = prepare(folder, ActivationOptions(**options))
    assert plan.signature is not None
    return plan.snapshot, plan.signature


@pytest.fixture
def plugin(make_plugin: Callable[..., Path]) -> Path:
    return make_plugin("demo-plugin")


def test_activation_of_a_signed_snapshot_reports_the_signer(plugin: Path, synapse_home: Path) -> None:
    sign_folder(plugin)
    check = check_activation(snapshot_folder(plugin, synapse_home / "cache" / "plugins"))
    assert check.signed
    assert check.to_meta() == {
        "signed": True,
        "signer": load_developer_key().subject,
        "signer_fingerprint": load_developer_key().fingerprint,
    }


@pytest.mark.parametrize("tamper", ["unsigned", "tampered"])
def test_activation_refuses_with_exit_4_by_default(plugin: Path, tamper: str) -> None:
    if tamper == "tampered":
        sign_folder(plugin)
        (plugin / "handler.py").write_text("evil = True\n")
    warnings: list[str] = []
    with pytest.raises(SignatureError) as info:
        check_activation(plugin, warn=warnings.append)
    assert info.value.reason == tamper
    assert info.value.exit_code == 4
    assert warnings == []


def test_the_insecure_flag_warns_on_every_use_and_marks_results_unsigned(plugin: Path) -> None:
    warnings: list[str] = []
    for _ in range(3):
        check = check_activation(plugin, allow_unsigned=True, warn=warnings.append)
        assert not check.signed
        assert check.to_meta() == {"signed": False, "signature_error": "unsigned"}
    assert len(warnings) == 3
    assert warnings[0].startswith(f"{INSECURE_FLAG}: running UNVERIFIED code")
    assert "demo-plugin: unsigned: " in warnings[0]


def test_the_insecure_flag_prints_to_stderr_by_default(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_activation(plugin, allow_unsigned=True)
    assert capsys.readouterr().err.startswith(f"warning: {INSECURE_FLAG}: running UNVERIFIED code")


def test_the_insecure_flag_changes_nothing_for_a_valid_signature(plugin: Path) -> None:
    sign_folder(plugin)
    warnings: list[str] = []
    assert check_activation(plugin, allow_unsigned=True, warn=warnings.append).signed
    assert warnings == []


def test_activation_runs_the_verified_read_only_snapshot_not_the_folder(plugin: Path, synapse_home: Path) -> None:
    sign_folder(plugin)
    snapshot, check = verified_snapshot(plugin)
    assert check.signed
    assert snapshot.path.parent == synapse_home / "cache" / "plugins"
    assert check.verification is not None
    assert check.verification.digest == snapshot.digest
    assert stat.S_IMODE((snapshot.path / "handler.py").stat().st_mode) == 0o444


@pytest.mark.parametrize(("signed", "reason"), [(True, "tampered"), (False, "unsigned")])
def test_a_folder_that_cannot_be_snapshotted_is_refused_with_exit_4(plugin: Path, signed: bool, reason: str) -> None:
    if signed:
        sign_folder(plugin)
    (plugin / "handler.py").rename(plugin / "real.py")
    (plugin / "handler.py").symlink_to(plugin / "real.py")
    with pytest.raises(SignatureError, match=r"handler\.py: is a symbolic link") as info:
        verified_snapshot(plugin)
    assert info.value.reason == reason
    assert info.value.exit_code == 4


def test_with_the_insecure_flag_a_folder_that_cannot_be_snapshotted_is_still_invalid(plugin: Path) -> None:
    (plugin / "link.py").symlink_to(plugin / "handler.py")
    with pytest.raises(FileSetError):
        verified_snapshot(plugin, insecure_allow_unsigned=True, warn=lambda _: None)


def test_an_unsigned_copy_of_a_signed_plugin_is_still_refused(tmp_path: Path, signed_example: Path) -> None:
    """Identical content shares one snapshot folder; each folder is judged by its own signature."""
    import shutil

    from synapse_nb.errors import SignatureError
    from synapse_nb.fileset import SIGNATURE_FILE

    copy = tmp_path / "copy" / "sentiment-analyzer"
    shutil.copytree(signed_example, copy)
    (copy / SIGNATURE_FILE).unlink()
    signed, _ = verified_snapshot(signed_example)
    with pytest.raises(SignatureError, match="unsigned") as info:
        verified_snapshot(copy)
    assert info.value.reason == "unsigned"
    # and the signed one still verifies after the unsigned copy was snapshotted
    again, check = verified_snapshot(signed_example)
    assert again.path == signed.path
    assert check.signed


def test_a_symlinked_signature_is_refused_at_activation(signed_example: Path) -> None:
    from synapse_nb.errors import SignatureError
    from synapse_nb.fileset import SIGNATURE_FILE

    sig = signed_example / SIGNATURE_FILE
    real = signed_example.parent / "elsewhere.sig.json"
    sig.rename(real)
    sig.symlink_to(real)
    with pytest.raises(SignatureError, match=r"synapse\.sig\.json: is a symbolic link") as info:
        verified_snapshot(signed_example)
    assert info.value.reason == "tampered"
