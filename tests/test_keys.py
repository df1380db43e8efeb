"""`synapse-cli keys init | list | trust | revoke | export`: output, exit codes and JSON shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from synapse_nb.cli import main
from synapse_nb.signing import PASSPHRASE_ENV, TrustStore, load_developer_key
from synapse_nb.signing.certs import fingerprint, serial_hex

from .pki import issue, root


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main([*args, "--json"])
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return code, out


def test_keys_init_creates_the_developer_key_and_says_what_next(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--name", "alice@example"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("created: CN=alice@example,O=synapse_nb developer (ecdsa-p256, sha256 ")
    assert "next: synapse-cli plugin sign PATH" in out
    assert main(["keys", "init"]) == 0
    assert capsys.readouterr().out.startswith("exists: CN=alice@example")


def test_keys_init_json_describes_key_and_ca(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "keys", "init", "--key-type", "ed25519")
    assert code == 0
    result = out["result"]
    assert isinstance(result, dict)
    assert result["key_type"] == "ed25519"
    assert result["created"] is True
    assert result["encrypted"] is False
    assert result["fingerprint"] == load_developer_key().fingerprint
    assert set(result["ca"]) == {"subject", "fingerprint", "certificate"}


def test_keys_init_with_a_passphrase_then_signing_without_it_exits_4(
    monkeypatch: pytest.MonkeyPatch, make_plugin: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret")
    assert main(["keys", "init"]) == 0
    assert "(encrypted)" in capsys.readouterr().out
    monkeypatch.delenv(PASSPHRASE_ENV)
    plugin = make_plugin("demo-plugin")
    assert main(["plugin", "sign", str(plugin)]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: demo-plugin: private key ")
    assert f"is encrypted; set {PASSPHRASE_ENV}" in err[0]


def test_keys_list_shows_the_developer_key_roots_and_revocations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init"]) == 0
    developer = load_developer_key()
    assert main(["keys", "revoke", serial_hex(developer.certificate.serial_number)]) == 0
    code, out = run_json(capsys, "keys", "list")
    assert code == 0
    result = out["result"]
    assert isinstance(result, dict)
    assert result["developer"]["fingerprint"] == developer.fingerprint  # type: ignore[index]
    assert result["roots"] == [
        {
            "subject": developer.ca_certificate.subject.rfc4514_string(),
            "fingerprint": fingerprint(developer.ca_certificate),
        }
    ]
    assert result["crls"][0]["revoked"] == [serial_hex(developer.certificate.serial_number)]  # type: ignore[index]
    assert main(["keys", "list"]) == 0
    text = capsys.readouterr().out
    assert "trusted roots (1):" in text
    assert "revoked by CRL of " in text


def test_keys_list_without_keys_points_at_keys_init(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list"]) == 0
    assert "developer key: none (run `synapse-cli keys init`)" in capsys.readouterr().out


def test_keys_export_prints_certificates_and_never_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init"]) == 0
    capsys.readouterr()
    assert main(["keys", "export"]) == 0
    chain = capsys.readouterr().out
    assert len(x509.load_pem_x509_certificates(chain.encode())) == 2
    assert "PRIVATE" not in chain
    target = tmp_path / "ca.pem"
    assert main(["keys", "export", "--ca", "-o", str(target)]) == 0
    (ca,) = x509.load_pem_x509_certificates(target.read_bytes())
    assert ca == load_developer_key().ca_certificate


def test_keys_export_without_a_key_exits_4_with_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "export"]) == 4
    assert "run `synapse-cli keys init` first" in capsys.readouterr().err


def test_keys_trust_adds_every_ca_of_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = root("Corp Root A"), root("Corp Root B")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem(first.cert) + pem(second.cert))
    code, out = run_json(capsys, "keys", "trust", str(bundle))
    assert code == 0
    trusted = out["result"]["trusted"]  # type: ignore[index]
    assert [t["subject"] for t in trusted] == ["CN=Corp Root A", "CN=Corp Root B"]
    assert {fingerprint(c) for c in TrustStore.load().roots} == {fingerprint(first.cert), fingerprint(second.cert)}


def test_keys_trust_accepts_der(tmp_path: Path) -> None:
    ca = root("Corp DER Root")
    der = tmp_path / "root.cer"
    der.write_bytes(ca.cert.public_bytes(serialization.Encoding.DER))
    assert main(["keys", "trust", str(der)]) == 0
    assert [c.subject.rfc4514_string() for c in TrustStore.load().roots] == ["CN=Corp DER Root"]


def test_keys_trust_refuses_a_leaf_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pem(issue("Some Dev", root()).cert))
    assert main(["keys", "trust", str(leaf)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot trust 'CN=Some Dev': it is not a CA certificate")
    assert TrustStore.load().roots == ()


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), (b"junk", "holds no PEM or DER")])
def test_keys_trust_of_a_missing_or_garbage_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    target = tmp_path / "root.pem"
    if content is not None:
        target.write_bytes(content)
    assert main(["keys", "trust", str(target)]) == 2
    assert message in capsys.readouterr().err


def test_keys_revoke_accepts_openssl_style_serials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init"]) == 0
    assert main(["keys", "revoke", "serial=0a:1B"]) == 0
    assert "revoked: serial 0A1B of CN=synapse developer CA" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["zz"], "is not hexadecimal"),
        (["0"], "must be positive"),
        ([], "pass SERIAL"),
        (["1A", "--crl", "x.crl"], "do not pass SERIAL"),
    ],
)
def test_keys_revoke_usage_errors_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init"]) == 0
    capsys.readouterr()
    assert main(["keys", "revoke", *args]) == 2
    assert message in capsys.readouterr().err


def test_keys_revoke_of_a_crl_that_is_not_one_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.crl"
    junk.write_bytes(b"junk")
    assert main(["keys", "revoke", "--crl", str(junk)]) == 2
    assert "is not a PEM or DER CRL" in capsys.readouterr().err
