"""Certificate path validation for code signing, on top of ``cryptography.x509.verification``.

The library's verifiers are built for TLS: ``build_client_verifier`` requires ExtendedKeyUsage clientAuth and
``build_server_verifier`` serverAuth plus a SubjectAltName. We use the client verifier (no subject name to match)
with both extension policies overridden (``PolicyBuilder.extension_policies``, cryptography >= 44):

* end entity: Web PKI defaults, but SubjectAltName *may* be absent, ExtendedKeyUsage *must* be present and contain
  codeSigning (this replaces the clientAuth check, so a clientAuth-only leaf fails), and KeyUsage *must* be present
  with digitalSignature;
* CAs: Web PKI defaults, but an ExtendedKeyUsage on an intermediate, when present, must allow codeSigning (or
  anyExtendedKeyUsage) instead of clientAuth.

Everything else is the library's: signature checks on every link, BasicConstraints, name chaining, the Web PKI
algorithm set (RSA >= 2048, ECDSA P-256/P-384) and validity of every certificate at the validation time.

Time: the signing time in the payload is asserted by the signer, and there is no trusted timestamp. So the chain
must be valid both *now* (the library's validation time) and at the claimed signing time, and the signing time
may not lie in the future beyond :data:`CLOCK_SKEW`. A stolen expired key therefore cannot back-date signatures;
the price is that signatures must be renewed when the signing certificate expires.

Before handing the chain to the library we check the leaf ourselves (key type, usage, validity) so that the
common failures get a precise reason; when the library refuses a chain, :func:`_diagnose` walks issuer names to
say which link is missing, untrusted or out of date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    VerificationError,
)

from .certs import fingerprint, is_self_issued, key_problem, serial_hex, subject, usage_problem, validity_problem
from .reasons import Reason
from .trust import TrustStore

__all__ = ["CLOCK_SKEW", "ChainProblem", "policy_builder", "validate_chain"]

CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_DEPTH = 4
_TRUST_HINT = "if you trust its root, run `synapse-cli keys trust ROOT.pem`"


class ChainProblem(Exception):
    """Why a signer's chain is refused: a reason from :mod:`.reasons`, a one-line message and details."""

    def __init__(self, reason: Reason, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.details = list(details or [])


def _leaf_eku(_policy: Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage) -> None:
    if ExtendedKeyUsageOID.CODE_SIGNING not in ext:
        raise ValueError("leaf ExtendedKeyUsage lacks codeSigning")


def _leaf_key_usage(_policy: Policy, _cert: x509.Certificate, ext: x509.KeyUsage) -> None:
    if not ext.digital_signature:
        raise ValueError("leaf KeyUsage lacks digitalSignature")


def _ca_eku(_policy: Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None) -> None:
    allowed = (ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
    if ext is not None and not any(oid in ext for oid in allowed):
        raise ValueError("CA ExtendedKeyUsage does not allow codeSigning")


def policy_builder(trust: TrustStore, at: dt.datetime) -> PolicyBuilder | None:
    """The code-signing path validation policy at time ``at`` (``None`` when ``trust`` has no roots)."""
    store = trust.store()
    if store is None:
        return None
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _leaf_eku)
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _leaf_key_usage)
    )
    ca = ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ca_eku)
    return (
        PolicyBuilder().store(store).time(at).max_chain_depth(MAX_DEPTH).extension_policies(ca_policy=ca, ee_policy=ee)
    )


def validate_chain(
    certificates: Sequence[x509.Certificate], trust: TrustStore, *, signed_at: dt.datetime, now: dt.datetime
) -> list[x509.Certificate]:
    """The verified chain (leaf first, trusted root last) for ``certificates``; :class:`ChainProblem` if none."""
    leaf, intermediates = certificates[0], list(certificates[1:])
    why = key_problem(leaf.public_key())
    if why is not None:
        raise ChainProblem("weak-key", f"signing certificate {subject(leaf)!r}: {why}")
    why = usage_problem(leaf)
    if why is not None:
        raise ChainProblem("wrong-usage", f"signing certificate {subject(leaf)!r} {why}; it cannot sign code")
    if signed_at > now + CLOCK_SKEW:
        raise ChainProblem(
            "not-yet-valid", f"signed at {signed_at:%Y-%m-%d %H:%M:%SZ}, which is in the future (check the clock)"
        )
    for moment, what in ((now, "now"), (signed_at, "at the signing time")):
        problem = validity_problem(leaf, moment, what=what)
        if problem is not None:
            hint = "re-sign with a current certificate" if problem[0] == "expired" else "check the clocks"
            raise ChainProblem(problem[0], f"{problem[1]}; {hint}")
    builder = policy_builder(trust, now)
    if builder is None:
        raise ChainProblem(
            "untrusted", "the trust store is empty; run `synapse-cli keys init` or `keys trust ROOT.pem`"
        )
    try:
        chain = builder.build_client_verifier().verify(leaf, intermediates).chain
    except VerificationError as exc:
        reason, message = _diagnose(leaf, intermediates, trust, now, str(exc))
        raise ChainProblem(reason, message, [f"path validation: {exc}", *trust.problems]) from exc
    if len(chain) < 2:
        raise ChainProblem(
            "untrusted", f"signing certificate {subject(leaf)!r} is itself a trust anchor; sign with a CA-issued one"
        )
    for cert in chain:
        problem = validity_problem(cert, signed_at, what="at the signing time")
        if problem is not None:
            raise ChainProblem(problem[0], problem[1])
    for cert, issuer in zip(chain, [*chain[1:], chain[-1]], strict=True):
        revoked = trust.revocation(cert, issuer)
        if revoked is not None:
            when = f" on {revoked.revoked_at:%Y-%m-%d}" if revoked.revoked_at else ""
            serial = serial_hex(cert.serial_number)
            raise ChainProblem(
                "revoked", f"certificate {subject(cert)!r} (serial {serial}) was revoked{when} ({revoked.source})"
            )
    return chain


def _diagnose(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], trust: TrustStore, now: dt.datetime, error: str
) -> tuple[Reason, str]:
    """Best-effort explanation of a refused chain: follow issuer names from the leaf towards a root."""
    why = error.rpartition("candidates exhausted: ")[2] or error
    current, seen = leaf, 0
    while seen <= MAX_DEPTH + 1:
        seen += 1
        roots = [r for r in trust.roots if r.subject == current.issuer]
        for root in roots:
            problem = validity_problem(root, now, what="now")
            if problem is not None:
                return problem[0], f"trusted root {problem[1]}"
        if roots:
            return "untrusted", f"{subject(current)!r} does not chain to trusted root {subject(roots[0])!r}: {why}"
        if is_self_issued(current):
            if current is leaf:
                return (
                    "untrusted",
                    f"the signing certificate {subject(leaf)!r} is self-signed and not a trusted root; sign with a"
                    " certificate issued by a trusted CA (`synapse-cli keys init` makes one)",
                )
            return (
                "untrusted",
                f"the chain's root {subject(current)!r} (sha256 {fingerprint(current)[:16]}) is self-signed and not"
                f" a trusted root; {_TRUST_HINT}",
            )
        parents = [c for c in intermediates if c.subject == current.issuer and c is not current]
        if not parents:
            return (
                "untrusted",
                f"issuer {current.issuer.rfc4514_string()!r} of {subject(current)!r} is neither a trusted root nor in"
                f" the signature (intermediate missing?); {_TRUST_HINT}",
            )
        current = parents[0]
        problem = validity_problem(current, now, what="now")
        if problem is not None:
            return problem[0], f"intermediate {problem[1]}"
    return "untrusted", f"no chain from {subject(leaf)!r} to a trusted root within {MAX_DEPTH} intermediates"
