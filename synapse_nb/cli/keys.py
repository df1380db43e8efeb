"""``synapse-cli keys init | list | trust CERT | revoke SERIAL | export``: the developer key and the trust store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    keys = subparsers["keys"]
    p = keys.add_parser(
        "init",
        help="create the developer CA and code-signing key (under SYNAPSE_HOME/keys)",
        description=(
            "Create a local developer CA and a code-signing certificate issued by it, and trust the CA. "
            "Private keys are written 0600, encrypted with SYNAPSE_KEY_PASSPHRASE when it is set. "
            "An existing key is kept unless --renew or --force."
        ),
    )
    p.add_argument("--name", help="common name of the certificate (default: user@host)")
    p.add_argument("--key-type", default="ecdsa-p256", choices=("ecdsa-p256", "ed25519"), help="code-signing key")
    p.add_argument("--renew", action="store_true", help="issue a new code-signing certificate from the existing CA")
    p.add_argument("--force", action="store_true", help="create a new CA and certificate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_init)

    p = keys.add_parser("list", help="show the developer key, trusted roots and revocations")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_list)

    p = keys.add_parser(
        "trust",
        help="trust a root CA certificate (PEM or DER)",
        description="Add the CA certificate(s) in CERT to the trust store; plugins signed under them then verify.",
    )
    p.add_argument("cert", type=Path, metavar="CERT", help="CA certificate file (a PEM bundle adds each CA)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_trust)

    p = keys.add_parser(
        "revoke",
        help="revoke a certificate serial (or import a CRL)",
        description=(
            "Revoke SERIAL (hex, as `openssl x509 -serial` prints it; colons allowed) issued by the developer CA "
            "(a signed CRL) or by --issuer CA_CERT (the local revocation list), or import a CRL with --crl."
        ),
    )
    p.add_argument("serial", nargs="?", metavar="SERIAL", help="certificate serial number in hex")
    p.add_argument(
        "--issuer",
        type=Path,
        metavar="CA_CERT",
        help="certificate of the CA that issued SERIAL (default: developer CA)",
    )
    p.add_argument(
        "--crl", type=Path, metavar="FILE", help="import this CRL (PEM or DER) instead of revoking one serial"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_revoke)

    p = keys.add_parser(
        "export",
        help="print the developer certificate chain (never the private key)",
        description="Print the developer certificate and its CA as PEM; --ca prints only the CA, for `keys trust`.",
    )
    p.add_argument("--ca", action="store_true", help="only the developer CA certificate")
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=run_export)


def run_init(args: argparse.Namespace, out: Output) -> int:
    from ..signing import init_developer_key

    key = init_developer_key(name=args.name, key_type=args.key_type, renew=args.renew, force=args.force)
    info = key.to_json()
    verb = "created" if key.created else "exists"
    out.info(
        f"{verb}: {info['subject']} ({info['key_type']}, sha256 {info['fingerprint'][:16]}), "
        f"valid until {key.certificate.not_valid_after_utc:%Y-%m-%d}"
    )
    out.info(
        f"  issued by {info['ca']['subject']} (trusted); key {info['key']}{' (encrypted)' if info['encrypted'] else ''}"
    )
    if key.created:
        out.info("next: synapse-cli plugin sign PATH")
    return out.ok(info)


def run_list(args: argparse.Namespace, out: Output) -> int:
    from ..errors import SignatureError
    from ..signing import TrustStore, load_developer_key
    from ..signing.certs import fingerprint, subject

    try:
        developer: dict[str, Any] | None = load_developer_key().to_json()
    except SignatureError:
        developer = None
    store = TrustStore.load()
    if developer is None:
        out.info("developer key: none (run `synapse-cli keys init`)")
    else:
        out.info(
            f"developer key: {developer['subject']} ({developer['key_type']}, serial {developer['serial']}, "
            f"until {developer['not_after'][:10]})"
        )
    out.info(f"trusted roots ({len(store.roots)}):")
    for root in store.roots:
        out.info(f"  {subject(root)}  sha256 {fingerprint(root)[:16]}  until {root.not_valid_after_utc:%Y-%m-%d}")
    revocations = store.to_json()
    for crl in revocations["crls"]:
        out.info(f"revoked by CRL of {crl['issuer']}: {', '.join(crl['revoked']) or '(none)'}")
    for entry in revocations["revoked"]:
        out.info(f"revoked locally: serial {entry['serial']} of {entry['issuer']}")
    for problem in store.problems:
        out.warn(problem)
    return out.ok({"developer": developer, **revocations})


def run_trust(args: argparse.Namespace, out: Output) -> int:
    from ..signing import add_root
    from ..signing.certs import fingerprint, read_certificates, subject

    try:
        certs = read_certificates(args.cert)
    except OSError as exc:
        raise UsageError(f"cannot read {str(args.cert)!r}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"{str(args.cert)!r} holds no PEM or DER certificate ({exc})") from exc
    added = []
    for cert in certs:
        path = add_root(cert)
        added.append({"subject": subject(cert), "fingerprint": fingerprint(cert), "path": str(path)})
        out.info(f"trusted: {subject(cert)} (sha256 {fingerprint(cert)})")
    return out.ok({"trusted": added})


def _parse_serial(text: str) -> int:
    cleaned = text.strip().removeprefix("serial=").removeprefix("0x").removeprefix("0X").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise UsageError(f"serial {text!r} is not hexadecimal (e.g. 1A2B3C or 1a:2b:3c)") from None
    if value <= 0:
        raise UsageError(f"serial {text!r} must be positive")
    return value


def run_revoke(args: argparse.Namespace, out: Output) -> int:
    from cryptography import x509

    from ..signing import add_crl, revoke_serial
    from ..signing.certs import read_certificates, serial_hex

    if args.crl is not None:
        if args.serial is not None or args.issuer is not None:
            raise UsageError("--crl imports a whole CRL; do not pass SERIAL or --issuer with it")
        try:
            data = args.crl.read_bytes()
            crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
        except OSError as exc:
            raise UsageError(f"cannot read {str(args.crl)!r}: {exc.strerror}") from exc
        except ValueError as exc:
            raise UsageError(f"{str(args.crl)!r} is not a PEM or DER CRL ({exc})") from exc
        path = add_crl(crl)
        serials = [serial_hex(r.serial_number) for r in crl]
        out.info(f"imported CRL of {crl.issuer.rfc4514_string()} ({len(serials)} serials) -> {path}")
        return out.ok({"issuer": crl.issuer.rfc4514_string(), "revoked": serials, "path": str(path)})
    if args.serial is None:
        raise UsageError("keys revoke: pass SERIAL (hex) or --crl FILE (see --help)")
    serial = _parse_serial(args.serial)
    issuer = None
    if args.issuer is not None:
        try:
            issuer = read_certificates(args.issuer)[0]
        except (OSError, ValueError) as exc:
            raise UsageError(f"--issuer {str(args.issuer)!r} is not a readable certificate ({exc})") from exc
    entry, path = revoke_serial(serial, issuer=issuer)
    out.info(f"revoked: serial {serial_hex(serial)} of {entry.issuer} ({entry.source}: {path})")
    return out.ok({**entry.to_json(), "path": str(path)})


def run_export(args: argparse.Namespace, out: Output) -> int:
    from ..signing import load_developer_key
    from ..signing.certs import to_pem

    key = load_developer_key()
    certs = [key.ca_certificate] if args.ca else key.chain
    text = "".join(to_pem(c) for c in certs)
    if args.output is not None:
        args.output.write_text(text, "ascii")
        print(f"wrote {len(certs)} certificate(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
