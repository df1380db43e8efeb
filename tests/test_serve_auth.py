"""Listen addresses, the loopback rule, token files and the constant-time bearer check."""

from __future__ import annotations

from pathlib import Path

import pytest

from synapse_nb.errors import UsageError
from synapse_nb.serve.auth import Address, BearerAuth, check_exposure, is_loopback, parse_address, read_token_file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":0", Address("127.0.0.1", 0)),
        ("50051", Address("127.0.0.1", 50051)),
        ("0.0.0.0:8000", Address("0.0.0.0", 8000)),
        ("[::1]:9000", Address("::1", 9000)),
        ("localhost:1", Address("localhost", 1)),
    ],
)
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text, option="--grpc") == expected


@pytest.mark.parametrize("text", ["", "host:", ":65536", "::1:80", "h:x"])
def test_a_bad_address_names_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--http"):
        parse_address(text, option="--http")


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("::")
    assert not is_loopback("10.1.2.3")


def test_a_non_loopback_address_needs_a_token_or_the_insecure_flag() -> None:
    exposed = [Address("127.0.0.1", 1), Address("0.0.0.0", 2)]
    with pytest.raises(UsageError, match=r"refusing to listen on 0\.0\.0\.0:2 .* without a token"):
        check_exposure(exposed, token=None, insecure_no_auth=False)
    assert check_exposure(exposed, token="t" * 16, insecure_no_auth=False) == []
    (warning,) = check_exposure(exposed, token=None, insecure_no_auth=True)
    assert "without authentication" in warning
    assert check_exposure([Address("127.0.0.1", 1)], token=None, insecure_no_auth=False) == []


def test_token_files(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text("  abcdefghijklmnopqrstuvwxyz\n")
    good.chmod(0o600)
    assert read_token_file(good) == ("abcdefghijklmnopqrstuvwxyz", [])
    good.chmod(0o644)
    assert "readable by other users" in read_token_file(good)[1][0]
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(UsageError, match="at least 16 printable characters"):
        read_token_file(short)
    spaced = tmp_path / "spaced"
    spaced.write_text("abcdefgh ijklmnopqrstuvwxyz")
    with pytest.raises(UsageError, match="without spaces"):
        read_token_file(spaced)
    with pytest.raises(UsageError, match="cannot read it"):
        read_token_file(tmp_path / "missing")


def test_bearer_auth() -> None:
    assert BearerAuth(None).allows(None)
    auth = BearerAuth("abcdefghijklmnopqrstuvwxyz")
    assert auth.required
    assert auth.allows("Bearer abcdefghijklmnopqrstuvwxyz")
    assert auth.allows(b"bearer abcdefghijklmnopqrstuvwxyz")
    for presented in (None, "", "Bearer", "Bearer abcdefghijklmnopqrstuvwxy", "Basic abcdefghijklmnopqrstuvwxyz"):
        assert not auth.allows(presented)
