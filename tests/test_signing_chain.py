"""Chain validation details not reachable through a well-formed trust store."""

from __future__ import annotations

import pytest
from cryptography.x509.verification import VerificationError

from synapse_nb.signing.certs import key_problem, usage_problem
from synapse_nb.signing.chain import ChainProblem, policy_builder, validate_chain
from synapse_nb.signing.trust import TrustStore

from .pki import CLIENT_AUTH, NOW, issue, new_key, root


def test_a_leaf_that_is_itself_a_trust_anchor_is_refused() -> None:
    ca = root()
    leaf = issue("Dev", ca)
    with pytest.raises(ChainProblem, match="itself a trust anchor") as info:
        validate_chain([leaf.cert], TrustStore(roots=(leaf.cert,)), signed_at=NOW, now=NOW)
    assert info.value.reason == "untrusted"


def test_a_valid_chain_is_returned_leaf_first_root_last() -> None:
    ca = root()
    leaf = issue("Dev", ca)
    chain = validate_chain([leaf.cert], TrustStore(roots=(ca.cert,)), signed_at=NOW, now=NOW)
    assert chain == [leaf.cert, ca.cert]


def test_the_path_validator_itself_refuses_a_client_auth_leaf() -> None:
    # validate_chain checks usage first; this pins down that the library policy would refuse it too.
    ca = root()
    leaf = issue("Dev", ca, eku=[CLIENT_AUTH])
    builder = policy_builder(TrustStore(roots=(ca.cert,)), NOW)
    assert builder is not None
    with pytest.raises(VerificationError, match="codeSigning"):
        builder.build_client_verifier().verify(leaf.cert, [])


@pytest.mark.parametrize(
    ("kind", "accepted"), [("p256", True), ("p384", True), ("ed25519", True), ("rsa2048", True), ("p521", False)]
)
def test_accepted_leaf_key_types(kind: str, accepted: bool) -> None:
    assert (key_problem(new_key(kind).public_key()) is None) is accepted


def test_usage_problem_names_what_the_certificate_has() -> None:
    leaf = issue("Dev", root(), eku=[CLIENT_AUTH])
    assert usage_problem(leaf.cert) == "lacks ExtendedKeyUsage codeSigning (has: clientAuth)"
    assert usage_problem(issue("Dev", root(), eku=None).cert) == (
        "lacks ExtendedKeyUsage codeSigning (has no ExtendedKeyUsage)"
    )
