"""The developer key: what `keys init` creates, passphrases, renewal, and revocation by the developer CA."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from synapse_nb.errors import SignatureError, UsageError
from synapse_nb.signing import (
    PASSPHRASE_ENV,
    TrustStore,
    ensure_developer_key,
    init_developer_key,
    load_developer_key,
    revoke_serial,
    sign_folder,
    verify_folder,
)
from synapse_nb.signing.certs import fingerprint

from .pki import DAY, NOW, root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_private_keys_0600_in_a_0700_folder(synapse_home: Path) -> None:
    key = init_developer_key(name="alice@example")
    assert key.created
    assert mode(synapse_home / "keys") == 0o700
    assert mode(key.key_path) == mode(key.ca_key_path) == 0o600
    assert mode(key.cert_path) == mode(key.ca_cert_path) == 0o644
    assert serialization.load_pem_private_key(key.key_path.read_bytes(), None)  # unencrypted
    assert not key.encrypted


def test_init_issues_a_code_signing_leaf_from_a_local_ca_and_trusts_the_ca() -> None:
    key = init_developer_key(name="alice@example")
    leaf, ca = key.certificate, key.ca_certificate
    assert key.subject == "CN=alice@example,O=synapse_nb developer"
    assert leaf.issuer == ca.subject
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CODE_SIGNING
    ]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert [fingerprint(r) for r in TrustStore.load().roots] == [fingerprint(ca)]


def test_init_keeps_an_existing_key() -> None:
    first = init_developer_key()
    again = init_developer_key()
    assert not again.created
    assert again.fingerprint == first.fingerprint


def test_renew_issues_a_new_leaf_from_the_same_ca() -> None:
    first = init_developer_key(name="alice")
    renewed = init_developer_key(name="alice", renew=True)
    assert renewed.fingerprint != first.fingerprint
    assert renewed.ca_certificate == first.ca_certificate


def test_renew_without_a_name_keeps_the_previous_name() -> None:
    init_developer_key(name="alice")
    assert init_developer_key(renew=True).subject == "CN=alice,O=synapse_nb developer"


def test_a_leaf_never_outlives_its_ca() -> None:
    first = init_developer_key()
    late = first.ca_certificate.not_valid_after_utc - 30 * DAY
    renewed = init_developer_key(renew=True, now=late)
    assert renewed.certificate.not_valid_after_utc == first.ca_certificate.not_valid_after_utc


def test_force_makes_a_new_ca_and_keeps_the_old_one_trusted() -> None:
    first = init_developer_key()
    second = init_developer_key(force=True)
    assert second.ca_certificate != first.ca_certificate
    assert len(TrustStore.load().roots) == 2


def test_an_ed25519_leaf_signs_under_an_ecdsa_ca(make_plugin: Callable[..., Path]) -> None:
    key = init_developer_key(key_type="ed25519")
    assert isinstance(key.certificate.public_key(), ed25519.Ed25519PublicKey)
    assert isinstance(key.ca_certificate.public_key(), ec.EllipticCurvePublicKey)
    plugin = make_plugin("demo-plugin")
    sign_folder(plugin)
    assert verify_folder(plugin).key_type == "ed25519"


def test_a_long_name_is_refused_and_a_long_ca_name_is_shortened() -> None:
    with pytest.raises(UsageError, match="must be 1 to 64 characters"):
        init_developer_key(name="x" * 65)
    key = init_developer_key(name="x" * 64)
    assert key.subject == f"CN={'x' * 64},O=synapse_nb developer"
    assert len(key.ca_certificate.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value) == 64


def test_unknown_key_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown key type 'dsa'"):
        init_developer_key(key_type="dsa")  # type: ignore[arg-type]


def test_keys_are_encrypted_with_the_passphrase_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, make_plugin: Callable[..., Path]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    key = init_developer_key()
    assert key.encrypted
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(key.ca_key_path.read_bytes(), None)
    assert serialization.load_pem_private_key(key.ca_key_path.read_bytes(), b"correct horse")
    plugin = make_plugin("demo-plugin")
    sign_folder(plugin)
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(SignatureError, match=f"is encrypted; set {PASSPHRASE_ENV}") as info:
        sign_folder(plugin)
    assert info.value.reason == "key-locked"
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(SignatureError, match="wrong passphrase") as info:
        sign_folder(plugin)
    assert info.value.reason == "key-locked"
    sign_folder(plugin, passphrase="correct horse")
    assert verify_folder(plugin).signer_fingerprint == key.fingerprint


def test_load_without_a_key_tells_the_user_to_run_keys_init() -> None:
    with pytest.raises(SignatureError, match="run `synapse-cli keys init` first") as info:
        load_developer_key()
    assert info.value.reason == "no-key"
    assert info.value.exit_code == 4


def test_ensure_creates_on_first_use_then_returns_the_same_key() -> None:
    created = ensure_developer_key()
    assert created.created
    again = ensure_developer_key()
    assert not again.created
    assert again.fingerprint == created.fingerprint


def test_ensure_renews_an_expired_leaf_keeping_its_name_and_ca() -> None:
    first = init_developer_key(name="alice")
    later = NOW + 800 * DAY
    renewed = ensure_developer_key(now=later)
    assert renewed.created
    assert renewed.subject == first.subject
    assert renewed.ca_certificate == first.ca_certificate
    assert renewed.certificate.not_valid_before_utc <= later <= renewed.certificate.not_valid_after_utc


def test_revoking_under_the_developer_ca_writes_a_crl_signed_by_it(synapse_home: Path) -> None:
    key = init_developer_key()
    serial = key.certificate.serial_number
    entry, path = revoke_serial(serial)
    assert entry.source == "crl"
    assert path.parent == synapse_home / "trust" / "crl"
    revoke_serial(serial)  # idempotent
    (crl,) = TrustStore.load().crls
    assert [r.serial_number for r in crl] == [serial]
    assert crl.is_signature_valid(key.ca_certificate.public_key())  # type: ignore[arg-type]
    assert TrustStore.load().revocation(key.certificate, key.ca_certificate) is not None


def test_revoking_under_another_ca_uses_the_local_list(synapse_home: Path) -> None:
    init_developer_key()
    other = root("Corp Root CA")
    entry, path = revoke_serial(0x1234, issuer=other.cert)
    assert (entry.source, entry.issuer) == ("local list", "CN=Corp Root CA")
    assert path == synapse_home / "trust" / "revoked.json"
    assert [(r.serial, r.issuer) for r in TrustStore.load().local] == [(0x1234, "CN=Corp Root CA")]


def test_revoking_without_a_developer_ca_needs_an_issuer() -> None:
    with pytest.raises(UsageError, match="pass --issuer"):
        revoke_serial(0x1234)
