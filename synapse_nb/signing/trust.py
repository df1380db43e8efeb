"""The trust store under ``SYNAPSE_HOME/trust``: trusted roots and what has been revoked.

Layout (folders 0700, files 0644; whoever can write here decides what runs, like ``/etc/ssl/certs``)::

    trust/roots/<sha256>.pem        trusted root CAs, one per file, named by fingerprint
    trust/crl/<name>.crl.pem        certificate revocation lists: the local developer CA's own (signed by its
                                    key) and CRLs imported from other CAs (``keys revoke --crl FILE``)
    trust/revoked.json              serials revoked locally for CAs whose key is not here
                                    (``{"revoked": [{"serial": "1A2B", "issuer": "CN=...", "revoked_at": "..."}]}``)

A CRL counts only for certificates whose issuer signed it, checked at use against the issuer certificate of
the chain being verified; a CRL that does not verify is ignored, never trusted. Revocations never expire: a stale
``nextUpdate`` does not bring a revoked certificate back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.verification import Store

from ..errors import UsageError
from ..paths import atomic_write, synapse_home
from .certs import PrivateKey, ca_problem, fingerprint, serial_hex, subject, to_pem, utc

__all__ = [
    "Revocation",
    "TrustStore",
    "add_crl",
    "add_local_revocation",
    "add_root",
    "trust_dir",
    "write_crl",
]

_ROOTS = "roots"
_CRLS = "crl"
_LOCAL_LIST = "revoked.json"
_ISSUER_KEYS = (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)


def trust_dir(home: Path | None = None) -> Path:
    """``SYNAPSE_HOME/trust``."""
    return (home or synapse_home()) / "trust"


@dataclass(frozen=True)
class Revocation:
    """One revoked serial of one issuer, and where the revocation comes from."""

    serial: int
    issuer: str
    source: str
    revoked_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": serial_hex(self.serial),
            "issuer": self.issuer,
            "source": self.source,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class TrustStore:
    """Trusted roots, revocation lists and local revocations. :meth:`load` reads them from ``SYNAPSE_HOME``.

    ``problems`` lists files that were skipped while loading (unreadable, not a CA...), so that ``keys list``
    and error details can show why a root one expected to be trusted is not.
    """

    roots: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    local: tuple[Revocation, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @classmethod
    def load(cls, home: Path | None = None) -> TrustStore:
        base = trust_dir(home)
        roots: list[x509.Certificate] = []
        problems: list[str] = []
        for path in sorted((base / _ROOTS).glob("*.pem")):
            try:
                certs = x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: skipped, not a PEM certificate ({exc})")
                continue
            for cert in certs:
                why = ca_problem(cert)
                if why is None:
                    roots.append(cert)
                else:
                    problems.append(f"{path}: skipped, {subject(cert)!r} {why}")
        crls: list[x509.CertificateRevocationList] = []
        for path in sorted((base / _CRLS).glob("*.pem")):
            try:
                crls.append(x509.load_pem_x509_crl(path.read_bytes()))
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: skipped, not a PEM CRL ({exc})")
        local, more = _read_local_list(base / _LOCAL_LIST)
        return cls(tuple(roots), tuple(crls), tuple(local), tuple(problems + more))

    def store(self) -> Store | None:
        """The roots as a verification :class:`Store`, or ``None`` when there are none."""
        return Store(list(self.roots)) if self.roots else None

    def is_root(self, cert: x509.Certificate) -> bool:
        return any(root == cert for root in self.roots)

    def revocation(self, cert: x509.Certificate, issuer: x509.Certificate) -> Revocation | None:
        """How ``cert`` (issued by ``issuer``) was revoked, or ``None`` when it was not."""
        issuer_name = cert.issuer.rfc4514_string()
        for entry in self.local:
            if entry.serial == cert.serial_number and entry.issuer == issuer_name:
                return entry
        for crl in self.crls:
            if crl.issuer != cert.issuer:
                continue
            found = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if found is None:
                continue
            key = issuer.public_key()
            if isinstance(key, _ISSUER_KEYS) and crl.is_signature_valid(key):
                return Revocation(cert.serial_number, issuer_name, "crl", found.revocation_date_utc)
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "roots": [{"subject": subject(c), "fingerprint": fingerprint(c)} for c in self.roots],
            "crls": [
                {"issuer": c.issuer.rfc4514_string(), "revoked": [serial_hex(r.serial_number) for r in c]}
                for c in self.crls
            ],
            "revoked": [r.to_json() for r in self.local],
            "problems": list(self.problems),
        }


def _read_local_list(path: Path) -> tuple[list[Revocation], list[str]]:
    try:
        obj = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return [], []
    except (OSError, ValueError) as exc:
        # Fail closed would lock the user out of everything; instead every verification reports the problem.
        return [], [f"{path}: unreadable ({exc}); fix or delete it"]
    out: list[Revocation] = []
    problems: list[str] = []
    for item in obj.get("revoked", []) if isinstance(obj, dict) else []:
        try:
            when = item.get("revoked_at")
            out.append(
                Revocation(
                    int(item["serial"], 16),
                    str(item["issuer"]),
                    "local list",
                    dt.datetime.fromisoformat(when) if when else None,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            problems.append(f"{path}: skipped entry {item!r}")
    return out, problems


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, data, mode)


def add_root(cert: x509.Certificate, *, home: Path | None = None) -> Path:
    """Trust ``cert`` as a root; returns its file. :class:`UsageError` when it is not a CA or has expired."""
    why = ca_problem(cert)
    if why is not None:
        raise UsageError(f"cannot trust {subject(cert)!r}: it {why}")
    if cert.not_valid_after_utc < utc():
        raise UsageError(
            f"cannot trust {subject(cert)!r}: it expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
            "ask its owner for the current certificate"
        )
    path = trust_dir(home) / _ROOTS / f"{fingerprint(cert)}.pem"
    _atomic_write(path, to_pem(cert).encode("ascii"))
    return path


def add_crl(crl: x509.CertificateRevocationList, *, home: Path | None = None) -> Path:
    """Keep an imported CRL; it counts only for certificates whose issuer's key verifies it."""
    der = crl.public_bytes(serialization.Encoding.DER)
    name = hashes.Hash(hashes.SHA256())
    name.update(der)
    path = trust_dir(home) / _CRLS / f"imported-{name.finalize().hex()[:16]}.crl.pem"
    _atomic_write(path, crl.public_bytes(serialization.Encoding.PEM))
    return path


def write_crl(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    serial: int,
    *,
    now: dt.datetime | None = None,
    home: Path | None = None,
) -> Path:
    """Add ``serial`` to the CRL of a CA whose key we hold, re-signing it; returns the CRL file."""
    moment = utc(now)
    path = trust_dir(home) / _CRLS / f"{fingerprint(ca_cert)}.crl.pem"
    builder = x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
    builder = builder.last_update(moment).next_update(max(moment, ca_cert.not_valid_after_utc))
    seen = set()
    if path.exists():
        for entry in x509.load_pem_x509_crl(path.read_bytes()):
            seen.add(entry.serial_number)
            builder = builder.add_revoked_certificate(entry)
    if serial not in seen:
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(moment).build()
        builder = builder.add_revoked_certificate(revoked)
    algorithm = None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    crl = builder.sign(ca_key, algorithm)
    _atomic_write(path, crl.public_bytes(serialization.Encoding.PEM))
    return path


def add_local_revocation(
    serial: int, issuer: x509.Name, *, now: dt.datetime | None = None, home: Path | None = None
) -> tuple[Revocation, Path]:
    """Revoke ``serial`` of ``issuer`` in ``trust/revoked.json`` (for CAs whose key is not local)."""
    path = trust_dir(home) / _LOCAL_LIST
    entries, _ = _read_local_list(path)
    entry = Revocation(serial, issuer.rfc4514_string(), "local list", utc(now))
    if not any(e.serial == serial and e.issuer == entry.issuer for e in entries):
        entries.append(entry)
    obj = {"revoked": [{k: v for k, v in e.to_json().items() if k != "source"} for e in entries]}
    _atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))
    return entry, path
