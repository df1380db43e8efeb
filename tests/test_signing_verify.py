"""Verification: the tamper suite of issue 4 (each case refused with exit 4 and its reason) and what is accepted.

Every refusal is checked through both entry points: the API (``verify_folder`` raises ``SignatureError`` with the
reason) and the CLI (``plugin verify --json`` exits 4 with the contract's JSON shape and one ``error:`` line).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from synapse_nb.cli import main
from synapse_nb.errors import ManifestError, SignatureError
from synapse_nb.fileset import SIGNATURE_FILE, snapshot_folder
from synapse_nb.manifest import load_manifest
from synapse_nb.signing import (
    TrustStore,
    add_root,
    load_developer_key,
    sign_folder,
    verify_folder,
    verify_snapshot,
)
from synapse_nb.signing.certs import fingerprint, serial_hex

from .pki import CLIENT_AUTH, DAY, NOW, Identity, intermediate, issue, new_key, root, sign_raw

PLUGIN = "demo-plugin"


@pytest.fixture
def plugin(make_plugin: Callable[..., Path]) -> Path:
    return make_plugin(PLUGIN)


@pytest.fixture
def signed(plugin: Path) -> Path:
    """The plugin signed with the developer key (created on first use, its CA trusted)."""
    sign_folder(plugin)
    return plugin


@pytest.fixture
def corp_root() -> Identity:
    """A corporate root CA, trusted in this test's SYNAPSE_HOME."""
    ca = root("Corp Root CA")
    add_root(ca.cert)
    return ca


def refused(folder: Path, reason: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Assert both entry points refuse ``folder`` with exit 4 and ``reason``; return the JSON error object."""
    with pytest.raises(SignatureError) as info:
        verify_folder(folder)
    assert info.value.reason == reason
    assert info.value.exit_code == 4
    assert "\n" not in str(info.value)
    capsys.readouterr()
    assert main(["plugin", "verify", str(folder), "--json"]) == 4
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] is False
    assert out["error"]["code"] == "signature"
    assert out["error"]["reason"] == reason
    assert out["error"]["exit_code"] == 4
    assert out["meta"]["path"] == str(folder)
    assert captured.err.splitlines()[0].startswith(f"error: {PLUGIN}: {reason}: ")
    assert "Traceback" not in captured.err
    error: dict[str, Any] = out["error"]
    return error


def edit_envelope(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / SIGNATURE_FILE
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


# --- accepted -------------------------------------------------------------------------------------------------


def test_a_folder_signed_with_the_developer_key_verifies_and_reports_its_signer(
    signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = verify_folder(signed)
    developer = load_developer_key()
    assert (result.plugin, result.version) == (PLUGIN, "0.1.0")
    assert result.signer_subject == developer.subject
    assert result.signer_fingerprint == developer.fingerprint == fingerprint(developer.certificate)
    assert result.chain == (developer.subject, developer.ca_certificate.subject.rfc4514_string())
    assert result.file_count == 6
    assert main(["plugin", "verify", str(signed), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["result"]["signed"] is True
    assert out["result"]["signer"]["fingerprint"] == developer.fingerprint
    assert out["result"]["digest"] == result.digest
    assert out["meta"] == {"plugin": PLUGIN, "version": "0.1.0", "path": str(signed)}


def test_verify_prints_the_signer_and_the_chain(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "verify", str(signed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {PLUGIN} 0.1.0 signed by {load_developer_key().subject}")
    assert "chain: " in out


def test_a_valid_chain_with_an_intermediate_is_accepted(plugin: Path, corp_root: Identity) -> None:
    inter = intermediate("Corp Code Signing CA", corp_root)
    leaf = issue("Corp Release Engineering", inter)
    sign_raw(plugin, leaf, [inter])
    result = verify_folder(plugin)
    assert result.chain == ("CN=Corp Release Engineering", "CN=Corp Code Signing CA", "CN=Corp Root CA")
    assert result.root_fingerprint == fingerprint(corp_root.cert)


def test_an_intermediate_constrained_to_code_signing_is_accepted(plugin: Path, corp_root: Identity) -> None:
    inter = intermediate("Corp Code Signing CA", corp_root, eku=[x509.oid.ExtendedKeyUsageOID.CODE_SIGNING])
    sign_raw(plugin, issue("Corp Dev", inter), [inter])
    assert verify_folder(plugin).signer_subject == "CN=Corp Dev"


def test_a_corporate_root_added_with_keys_trust_is_accepted(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corp = root("ACME Corporate Root")
    leaf = issue("ACME Plugin Team", corp)
    key_path, cert_path = leaf.write(tmp_path / "acme", "team")
    assert main(["plugin", "sign", str(plugin), "--key", str(key_path), "--cert", str(cert_path)]) == 0
    assert "does not verify on this machine" in capsys.readouterr().err
    with pytest.raises(SignatureError) as info:
        verify_folder(plugin)
    assert info.value.reason == "untrusted"
    root_pem = tmp_path / "acme-root.pem"
    root_pem.write_bytes(corp.cert.public_bytes(serialization.Encoding.PEM))
    assert main(["keys", "trust", str(root_pem)]) == 0
    capsys.readouterr()
    assert main(["plugin", "verify", str(plugin)]) == 0
    assert "signed by CN=ACME Plugin Team" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["ed25519", "p384", "rsa3072"])
def test_other_accepted_leaf_key_types_verify(plugin: Path, corp_root: Identity, kind: str) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root, key=new_key(kind)), [corp_root])
    assert verify_folder(plugin).key_type == {"ed25519": "ed25519", "p384": "ecdsa-p384", "rsa3072": "rsa-3072"}[kind]


def test_a_snapshot_verifies_without_hashing_again(signed: Path, synapse_home: Path) -> None:
    snapshot = snapshot_folder(signed, synapse_home / "cache" / "plugins")
    result = verify_snapshot(snapshot)
    assert result.digest == snapshot.digest == verify_folder(signed).digest


def test_bytecode_next_to_signed_files_is_not_part_of_the_file_set(signed: Path) -> None:
    (signed / "__pycache__").mkdir()
    (signed / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0bytecode")
    (signed / "stray.pyc").write_bytes(b"\0bytecode")
    assert verify_folder(signed).file_count == 6


def test_a_forged_crl_for_the_signers_issuer_is_ignored(plugin: Path, corp_root: Identity, synapse_home: Path) -> None:
    leaf = issue("Corp Dev", corp_root)
    sign_raw(plugin, leaf, [corp_root])
    forger = new_key()
    revoked = x509.RevokedCertificateBuilder().serial_number(leaf.cert.serial_number).revocation_date(NOW).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(corp_root.cert.subject)
        .last_update(NOW)
        .next_update(NOW + DAY)
        .add_revoked_certificate(revoked)
        .sign(forger, hashes.SHA256())  # type: ignore[arg-type]
    )
    crl_dir = synapse_home / "trust" / "crl"
    crl_dir.mkdir(parents=True)
    (crl_dir / "forged.crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    assert len(TrustStore.load().crls) == 1
    assert verify_folder(plugin).signer_subject == "CN=Corp Dev"


# --- the tamper suite: files ----------------------------------------------------------------------------------


def test_unsigned_plugin_is_refused(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = refused(plugin, "unsigned", capsys)
    assert "synapse-cli plugin sign" in error["message"]


def test_modified_file_is_refused_and_named(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "handler.py").write_text((signed / "handler.py").read_text() + "\nimport os\n")
    error = refused(signed, "tampered", capsys)
    assert "handler.py modified" in error["message"]
    assert f"signed by {load_developer_key().subject!r}" in error["message"]
    assert error["details"] == ["handler.py modified"]


def test_added_file_is_refused_and_named(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "tests" / "x.py").write_text("print('hi')\n")
    assert refused(signed, "tampered", capsys)["details"] == ["tests/x.py added"]


def test_deleted_file_is_refused_and_named(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "requirements.txt").unlink()
    assert refused(signed, "tampered", capsys)["details"] == ["requirements.txt removed"]


def test_renamed_file_is_refused_and_named(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "schemas" / "output_schema.json").rename(signed / "schemas" / "output.json")
    details = refused(signed, "tampered", capsys)["details"]
    assert details == ["schemas/output_schema.json renamed to schemas/output.json"]


def test_every_change_is_listed_in_the_details(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "handler.py").write_text("changed\n")
    (signed / "requirements.txt").unlink()
    for n in range(7):
        (signed / f"extra{n}.txt").write_text(str(n))
    error = refused(signed, "tampered", capsys)
    assert len(error["details"]) == 9
    assert "and 4 more" in error["message"]


def test_file_replaced_by_a_symlink_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = signed / "handler.py"
    copy = signed.parent / "handler-elsewhere.py"
    shutil.copyfile(handler, copy)
    handler.unlink()
    handler.symlink_to(copy)
    error = refused(signed, "tampered", capsys)
    assert "handler.py: is a symbolic link" in error["message"]


def test_case_colliding_file_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / "Handler.py").write_text("evil = True\n")
    error = refused(signed, "tampered", capsys)
    assert "collides case-insensitively" in error["message"]


def test_special_file_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(signed / "pipe")
    assert "special file" in refused(signed, "tampered", capsys)["message"]


def test_a_manifest_replaced_by_garbage_is_reported_as_tampered(
    signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (signed / "manifest.yaml").write_text("{{ not yaml")
    with pytest.raises(SignatureError) as info:
        verify_folder(signed)
    assert info.value.reason == "tampered"
    assert info.value.details == ["manifest.yaml modified"]
    assert info.value.plugin == PLUGIN  # named after the folder when the manifest cannot say


def test_an_intact_signature_over_an_invalid_manifest_is_a_manifest_error(plugin: Path, corp_root: Identity) -> None:
    manifest = plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.1.0", "version: one"))
    sign_raw(plugin, issue("Corp Dev", corp_root), [corp_root], name=PLUGIN, version="0.1.0")
    with pytest.raises(ManifestError) as info:
        verify_folder(plugin)
    assert info.value.exit_code == 3


def test_verifying_a_path_that_is_not_a_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "verify", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# --- the tamper suite: the envelope ---------------------------------------------------------------------------


def test_edited_payload_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def change(obj: dict[str, Any]) -> None:
        payload = json.loads(base64.b64decode(obj["payload"]))
        payload["files"] = [f for f in payload["files"] if f["path"] != "requirements.txt"]
        obj["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()

    edit_envelope(signed, change)
    refused(signed, "bad-signature", capsys)


def test_signature_with_one_bit_flipped_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def change(obj: dict[str, Any]) -> None:
        sig = bytearray(base64.b64decode(obj["signatures"][0]["sig"]))
        sig[len(sig) // 2] ^= 0x01
        obj["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()

    edit_envelope(signed, change)
    refused(signed, "bad-signature", capsys)


def test_swapped_payload_type_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def change(obj: dict[str, Any]) -> None:
        obj["payloadType"] = "application/vnd.in-toto+json"

    edit_envelope(signed, change)
    refused(signed, "bad-signature", capsys)


def test_a_genuine_signature_over_another_payload_type_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root), [corp_root], payload_type="application/vnd.in-toto+json")
    assert "payload type" in refused(plugin, "malformed", capsys)["message"]


def test_signature_that_is_not_json_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (signed / SIGNATURE_FILE).write_text("not json")
    refused(signed, "malformed", capsys)


def test_signature_file_that_is_a_symlink_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = signed.parent / "sig-elsewhere.json"
    (signed / SIGNATURE_FILE).rename(real)
    (signed / SIGNATURE_FILE).symlink_to(real)
    refused(signed, "malformed", capsys)


def test_signature_by_a_key_that_does_not_match_the_certificate_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root), [corp_root], key=new_key())
    refused(plugin, "bad-signature", capsys)


def test_signature_for_version_1_0_0_copied_onto_1_0_1_is_refused(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.1.0", "version: 1.0.0"))
    sign_folder(plugin)
    newer = tmp_path / "newer" / PLUGIN
    shutil.copytree(plugin, newer)
    (newer / "manifest.yaml").write_text(manifest.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    error = refused(newer, "version-mismatch", capsys)
    assert "the signature is for demo-plugin 1.0.0 but manifest.yaml says demo-plugin 1.0.1" in error["message"]


def test_a_manifest_passed_by_the_caller_must_match_the_signed_version(signed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(signed, other)
    text = (other / "manifest.yaml").read_text()
    (other / "manifest.yaml").write_text(text.replace("version: 0.1.0", "version: 0.2.0"))
    with pytest.raises(SignatureError) as info:
        verify_folder(signed, manifest=load_manifest(other))
    assert info.value.reason == "version-mismatch"


# --- the tamper suite: the signer's certificate ---------------------------------------------------------------


def test_leaf_with_client_auth_only_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_raw(plugin, issue("Corp TLS Client", corp_root, eku=[CLIENT_AUTH]), [corp_root])
    assert "lacks ExtendedKeyUsage codeSigning (has: clientAuth)" in refused(plugin, "wrong-usage", capsys)["message"]


def test_leaf_without_digital_signature_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root, digital_signature=False), [corp_root])
    assert "digitalSignature" in refused(plugin, "wrong-usage", capsys)["message"]


def test_leaf_without_key_usage_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root, key_usage=False), [corp_root])
    refused(plugin, "wrong-usage", capsys)


def test_leaf_that_is_a_ca_is_refused(plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    sign_raw(plugin, issue("Corp Sub CA", corp_root, ca=True), [corp_root])
    assert "is a CA certificate" in refused(plugin, "wrong-usage", capsys)["message"]


def test_self_signed_leaf_is_refused(plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    sign_raw(plugin, issue("Lone Developer"))
    assert "is self-signed and not a trusted root" in refused(plugin, "untrusted", capsys)["message"]


def test_self_signed_leaf_dropped_into_the_trust_store_is_still_refused(
    plugin: Path, synapse_home: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    lone = issue("Lone Developer")
    (synapse_home / "trust" / "roots" / "lone.pem").write_bytes(lone.cert.public_bytes(serialization.Encoding.PEM))
    sign_raw(plugin, lone)
    assert any("is not a CA certificate" in p for p in TrustStore.load().problems)
    refused(plugin, "untrusted", capsys)


def test_root_not_trusted_is_refused(plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    stranger = root("Stranger Root CA")
    sign_raw(plugin, issue("Stranger Dev", stranger), [stranger])
    error = refused(plugin, "untrusted", capsys)
    assert "the chain's root 'CN=Stranger Root CA'" in error["message"]
    assert "keys trust" in error["message"]


def test_missing_intermediate_is_refused(plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    inter = intermediate("Corp Code Signing CA", corp_root)
    sign_raw(plugin, issue("Corp Dev", inter))
    assert "intermediate missing" in refused(plugin, "untrusted", capsys)["message"]


def test_intermediate_restricted_to_server_auth_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    inter = intermediate("Corp TLS CA", corp_root, eku=[x509.oid.ExtendedKeyUsageOID.SERVER_AUTH])
    sign_raw(plugin, issue("Corp Dev", inter), [inter])
    refused(plugin, "untrusted", capsys)


def test_expired_certificate_is_refused(plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    leaf = issue("Corp Dev", corp_root, not_before=NOW - 400 * DAY, not_after=NOW - 10 * DAY)
    sign_raw(plugin, leaf, [corp_root], signed_at=NOW - 20 * DAY)  # valid when it signed, expired now
    assert "expired on" in refused(plugin, "expired", capsys)["message"]


def test_signature_made_after_the_certificate_expired_is_refused(plugin: Path, corp_root: Identity) -> None:
    leaf = issue("Corp Dev", corp_root, not_before=NOW - 400 * DAY, not_after=NOW - 10 * DAY)
    sign_raw(plugin, leaf, [corp_root], signed_at=NOW - 5 * DAY)
    with pytest.raises(SignatureError) as info:
        verify_folder(plugin, now=NOW - 15 * DAY)  # verified in the past: valid then, but signed after expiry
    assert info.value.reason == "not-yet-valid"  # the claimed signing time lies in the future of that clock
    with pytest.raises(SignatureError) as info:
        verify_folder(plugin, now=NOW)
    assert info.value.reason == "expired"


def test_expired_intermediate_is_refused(plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]) -> None:
    inter = intermediate("Corp Old CA", corp_root, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    sign_raw(plugin, issue("Corp Dev", inter, not_before=NOW - 300 * DAY), [inter], signed_at=NOW - 2 * DAY)
    assert "intermediate certificate 'CN=Corp Old CA' expired" in refused(plugin, "expired", capsys)["message"]


def test_certificate_not_yet_valid_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root, not_before=NOW + DAY, not_after=NOW + 30 * DAY), [corp_root])
    assert "is not valid before" in refused(plugin, "not-yet-valid", capsys)["message"]


def test_signing_time_before_the_certificate_existed_is_refused(plugin: Path, corp_root: Identity) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root), [corp_root], signed_at=NOW - 30 * DAY)  # back-dated
    with pytest.raises(SignatureError, match="at the signing time") as info:
        verify_folder(plugin)
    assert info.value.reason == "not-yet-valid"


def test_signing_time_in_the_future_is_refused(plugin: Path, corp_root: Identity) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root), [corp_root], signed_at=NOW + DAY)
    with pytest.raises(SignatureError, match="in the future") as info:
        verify_folder(plugin)
    assert info.value.reason == "not-yet-valid"


def test_revoked_leaf_is_refused(signed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serial = serial_hex(load_developer_key().certificate.serial_number)
    assert main(["keys", "revoke", serial]) == 0
    assert f"serial {serial}" in refused(signed, "revoked", capsys)["message"]


def test_leaf_revoked_in_the_local_list_is_refused(
    plugin: Path, corp_root: Identity, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf = issue("Corp Dev", corp_root, serial=0xABC)  # odd number of hex digits: shown as 0ABC, as openssl does
    sign_raw(plugin, leaf, [corp_root])
    issuer_pem = tmp_path / "corp-root.pem"
    issuer_pem.write_bytes(corp_root.cert.public_bytes(serialization.Encoding.PEM))
    serial = serial_hex(leaf.cert.serial_number)
    assert main(["keys", "revoke", serial, "--issuer", str(issuer_pem)]) == 0
    message = refused(plugin, "revoked", capsys)["message"]
    assert "'CN=Corp Dev' (serial 0ABC) was revoked" in message
    assert "(local list)" in message


def test_intermediate_revoked_by_an_imported_crl_is_refused(
    plugin: Path, corp_root: Identity, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inter = intermediate("Corp Code Signing CA", corp_root)
    sign_raw(plugin, issue("Corp Dev", inter), [inter])
    entry = x509.RevokedCertificateBuilder().serial_number(inter.cert.serial_number).revocation_date(NOW).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(corp_root.cert.subject)
        .last_update(NOW - 30 * DAY)
        .next_update(NOW - DAY)  # stale: revocations do not expire
        .add_revoked_certificate(entry)
        .sign(corp_root.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crl_file = tmp_path / "corp.crl"
    crl_file.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    assert main(["keys", "revoke", "--crl", str(crl_file)]) == 0
    assert "'CN=Corp Code Signing CA'" in refused(plugin, "revoked", capsys)["message"]


@pytest.mark.parametrize(("kind", "why"), [("rsa1024", "too small"), ("p521", "secp521r1")])
def test_weak_or_unsupported_leaf_key_is_refused(
    plugin: Path, corp_root: Identity, capsys: pytest.CaptureFixture[str], kind: str, why: str
) -> None:
    sign_raw(plugin, issue("Corp Dev", corp_root, key=new_key(kind)), [corp_root])
    assert why in refused(plugin, "weak-key", capsys)["message"]


def test_empty_trust_store_is_refused_with_a_hint(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lone_root = root("Some Root")
    sign_raw(plugin, issue("Dev", lone_root), [lone_root])
    assert "keys init" in refused(plugin, "untrusted", capsys)["message"]


def test_refusal_from_a_real_process_prints_one_error_line_and_no_traceback(signed: Path) -> None:
    (signed / "handler.py").write_text("tampered = True\n")
    proc = subprocess.run(
        [sys.executable, "-m", "synapse_nb", "plugin", "verify", str(signed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"error: {PLUGIN}: tampered: handler.py modified (signed by ")
    assert lines[1:] == ["  handler.py modified"]
    assert proc.stdout == ""
