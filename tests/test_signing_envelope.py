"""The DSSE envelope: PAE, round trips, strict parsing, and the signature algorithm of each key type."""

from __future__ import annotations

import base64
import json

import pytest

from synapse_nb.signing.envelope import (
    PAYLOAD_TYPE,
    Envelope,
    EnvelopeError,
    pae,
    sign_bytes,
    sign_envelope,
    verify_bytes,
)

from .pki import issue, new_key, root


def test_pae_matches_the_dsse_specification_example() -> None:
    # The test vector of the DSSE protocol specification.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t/\u00e9", b"\xff") == b"DSSEv1 4 t/\xc3\xa9 1 \xff"


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa2048"])
def test_each_key_type_signs_and_verifies_and_detects_a_changed_byte(kind: str) -> None:
    key = new_key(kind)
    sig = sign_bytes(key, b"payload")
    assert verify_bytes(key.public_key(), sig, b"payload")
    assert not verify_bytes(key.public_key(), sig, b"payloae")
    assert not verify_bytes(new_key(kind).public_key(), sig, b"payload")


def test_an_envelope_round_trips_through_its_json() -> None:
    ca = root()
    leaf = issue("Dev", ca)
    envelope = sign_envelope(b'{"a":1}', leaf.key, [leaf.cert, ca.cert])
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.payload_type == PAYLOAD_TYPE
    assert again.signature.keyid.startswith("sha256:")
    assert verify_bytes(leaf.cert.public_key(), again.signature.sig, again.signed_bytes())  # type: ignore[arg-type]


def test_url_safe_base64_is_accepted_as_dsse_requires() -> None:
    leaf = issue("Dev", root())
    payload = b"\xfb\xff" * 10  # encodes to '+' and '/' in standard base64
    obj = json.loads(sign_envelope(payload, leaf.key, [leaf.cert]).to_bytes())
    obj["payload"] = base64.urlsafe_b64encode(payload).decode()
    assert Envelope.from_bytes(json.dumps(obj).encode()).payload == payload


def test_signing_with_a_key_that_is_not_the_certificates_is_refused() -> None:
    leaf = issue("Dev", root())
    with pytest.raises(ValueError, match="does not belong"):
        sign_envelope(b"x", new_key(), [leaf.cert])


def _envelope_json() -> dict[str, object]:
    leaf = issue("Dev", root())
    obj: dict[str, object] = json.loads(sign_envelope(b"{}", leaf.key, [leaf.cert]).to_bytes())
    return obj


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.pop("payloadType"), "payloadType"),
        (lambda o: o.update(payload="not base64!"), "not valid base64"),
        (lambda o: o.update(signatures=[]), "exactly one"),
        (lambda o: o.update(signatures=o["signatures"] * 2), "exactly one"),
        (lambda o: o["signatures"][0].update(certificates=[]), "certificates"),
        (lambda o: o["signatures"][0].update(certificates=["garbage"]), "not a PEM certificate"),
        (lambda o: o["signatures"][0].update(certificates=o["signatures"][0]["certificates"] * 9), "more than 8"),
        (lambda o: o["signatures"][0].update(keyid=7), "keyid"),
        (lambda o: o["signatures"][0].pop("sig"), "'sig'"),
    ],
)
def test_malformed_envelopes_are_refused_with_what_is_wrong(change: object, message: str) -> None:
    obj = _envelope_json()
    change(obj)  # type: ignore[operator]
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_bytes(json.dumps(obj).encode())


def test_an_envelope_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="not a JSON object"):
        Envelope.from_bytes(b"[]")
    with pytest.raises(EnvelopeError, match="not UTF-8 JSON"):
        Envelope.from_bytes(b"\xff")
