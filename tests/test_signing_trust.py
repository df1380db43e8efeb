"""The trust store: loading roots and revocation lists, and which revocations count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from synapse_nb.errors import UsageError
from synapse_nb.signing import TrustStore, add_crl, add_root
from synapse_nb.signing.trust import add_local_revocation

from .pki import DAY, NOW, Identity, issue, new_key, root


def crl_of(ca: Identity, *serials: int, signer: Identity | None = None) -> x509.CertificateRevocationList:
    builder = x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject).last_update(NOW)
    builder = builder.next_update(NOW + DAY)
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW).build()
        )
    return builder.sign((signer or ca).key, hashes.SHA256())  # type: ignore[arg-type]


def test_an_empty_home_has_an_empty_store() -> None:
    store = TrustStore.load()
    assert (store.roots, store.crls, store.local, store.problems) == ((), (), (), ())
    assert store.store() is None


def test_added_roots_are_loaded_and_files_named_by_fingerprint(synapse_home: Path) -> None:
    ca = root("Corp Root CA")
    path = add_root(ca.cert)
    assert path.parent == synapse_home / "trust" / "roots"
    assert path.stem == ca.cert.fingerprint(hashes.SHA256()).hex()
    assert TrustStore.load().roots == (ca.cert,)


def test_an_expired_root_is_not_added() -> None:
    old = root("Old Root", not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    with pytest.raises(UsageError, match="expired on"):
        add_root(old.cert)


def test_unreadable_files_in_the_store_are_skipped_and_reported(synapse_home: Path) -> None:
    roots = synapse_home / "trust" / "roots"
    roots.mkdir(parents=True)
    (roots / "junk.pem").write_text("junk")
    (synapse_home / "trust" / "revoked.json").write_text("{not json")
    add_root(root().cert)
    store = TrustStore.load()
    assert len(store.roots) == 1
    assert len(store.problems) == 2
    assert "junk.pem: skipped" in store.problems[0]
    assert "revoked.json: unreadable" in store.problems[1]


def test_a_crl_counts_only_when_signed_by_the_issuer_of_the_certificate() -> None:
    ca = root("Corp Root CA")
    leaf = issue("Corp Dev", ca)
    genuine = TrustStore(roots=(ca.cert,), crls=(crl_of(ca, leaf.cert.serial_number),))
    assert genuine.revocation(leaf.cert, ca.cert) is not None
    forged = TrustStore(roots=(ca.cert,), crls=(crl_of(ca, leaf.cert.serial_number, signer=root("Forger")),))
    assert forged.revocation(leaf.cert, ca.cert) is None


def test_a_crl_for_another_serial_or_issuer_does_not_revoke() -> None:
    ca, other = root("Corp Root CA"), root("Other Root CA")
    leaf = issue("Corp Dev", ca)
    store = TrustStore(crls=(crl_of(ca, leaf.cert.serial_number + 1), crl_of(other, leaf.cert.serial_number)))
    assert store.revocation(leaf.cert, ca.cert) is None


def test_imported_crls_are_kept_in_the_store() -> None:
    ca = root()
    add_crl(crl_of(ca, 7))
    (crl,) = TrustStore.load().crls
    assert crl.get_revoked_certificate_by_serial_number(7) is not None


def test_local_revocations_match_serial_and_issuer_name(synapse_home: Path) -> None:
    ca = root("Corp Root CA")
    leaf = issue("Corp Dev", ca)
    add_local_revocation(leaf.cert.serial_number, ca.cert.subject)
    add_local_revocation(leaf.cert.serial_number, ca.cert.subject)  # no duplicate
    stored = json.loads((synapse_home / "trust" / "revoked.json").read_text())
    assert len(stored["revoked"]) == 1
    store = TrustStore.load()
    found = store.revocation(leaf.cert, ca.cert)
    assert found is not None
    assert found.source == "local list"
    same_serial_elsewhere = issue("Other Dev", root("Other CA"), serial=leaf.cert.serial_number)
    assert store.revocation(same_serial_elsewhere.cert, ca.cert) is None


def test_a_store_is_described_as_json() -> None:
    ca = root("Corp Root CA")
    store = TrustStore(roots=(ca.cert,), crls=(crl_of(ca, 0x0A1B),))
    described = store.to_json()
    assert described["roots"][0]["subject"] == "CN=Corp Root CA"
    assert described["crls"] == [{"issuer": "CN=Corp Root CA", "revoked": ["0A1B"]}]
    assert json.dumps(described)


def test_roots_written_by_hand_must_still_be_cas(synapse_home: Path) -> None:
    roots = synapse_home / "trust" / "roots"
    roots.mkdir(parents=True)
    key = new_key()
    leaf = issue("Not A CA", key=key)
    (roots / "leaf.pem").write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
    store = TrustStore.load()
    assert store.roots == ()
    assert "is not a CA certificate" in store.problems[0]
