"""Client-side OAuth2 through httpx's transport seam: caching, refresh on 401, redaction, plain-HTTP refusal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from synapse_nb.errors import RegistryError
from synapse_nb.registry.auth import TokenCache, leeway, redact
from synapse_nb.registry.client import RegistryClient
from synapse_nb.registry.settings import RegistryConfig

SECRET = "client-secret-value-987"
CC = {"type": "oauth2", "token_url": "https://idp.example/token", "client_id": "ci", "client_secret": "${CC_SECRET}"}


class FakeIdp:
    """A token endpoint and a registry that accepts only the latest token (a transport, no sockets)."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if request.url.path == "/token":
            assert request.headers["authorization"].startswith("Basic ")
            assert b"grant_type=client_credentials" in request.content
            token = f"tok-{len(self.issued)}"
            self.issued.append(token)
            return httpx.Response(
                200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
            )
        if request.headers.get("authorization") != f"Bearer {self.issued[-1] if self.issued else ''}":
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "bad token"}})
        return httpx.Response(200, json={"client_id": "ci", "scopes": ["read"]})


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_SECRET", SECRET)
    TokenCache._memory.clear()


def client(idp: FakeIdp, auth: dict[str, str] = CC) -> RegistryClient:
    return RegistryClient(RegistryConfig("corp", "https://plugins.example", auth), transport=httpx.MockTransport(idp))


def test_a_client_credentials_token_is_fetched_once_and_cached(synapse_home: Path) -> None:
    idp = FakeIdp()
    with client(idp) as c:
        c.whoami()
        c.whoami()
    with client(idp) as c:  # another process would read token.json
        TokenCache._memory.clear()
        c.whoami()
    assert idp.calls.count(("POST", "/token")) == 1
    record = json.loads((synapse_home / "registry" / "corp" / "token.json").read_text())
    assert record["access_token"] == "tok-0"
    assert record["renew_at"] == pytest.approx(record["expires_at"] - 60, abs=1)


def test_a_token_is_renewed_shortly_before_it_expires() -> None:
    assert leeway(3600) == 60
    assert leeway(100) == 10
    idp = FakeIdp(expires_in=1)
    with client(idp) as c:
        c.whoami()
        time.sleep(0.95)  # within the last 10% of its lifetime
        c.whoami()
    assert idp.issued == ["tok-0", "tok-1"]


def test_a_401_fetches_a_new_token_and_retries_exactly_once(synapse_home: Path) -> None:
    idp = FakeIdp()
    with client(idp) as c:
        c.whoami()
        idp.issued.append("rotated-by-the-server")  # the server no longer accepts tok-0
        assert c.whoami()["client_id"] == "ci"
    assert idp.issued[-1] == "tok-2"
    assert idp.calls.count(("POST", "/token")) == 2

    def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "bearer", "expires_in": 60})
        return httpx.Response(401, json={"error": {"message": "no"}})

    calls = []
    transport = httpx.MockTransport(lambda r: calls.append(r.url.path) or always_401(r))
    with RegistryClient(RegistryConfig("corp2", "https://plugins.example", CC), transport=transport) as c, \
            pytest.raises(RegistryError, match="401 unauthorized"):  # fmt: skip
        c.whoami()
    assert calls == ["/token", "/api/v1/whoami", "/token", "/api/v1/whoami"]


def test_token_endpoint_errors_never_show_the_secret(synapse_home: Path) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client", "error_description": f"bad secret {SECRET}"})

    with (
        RegistryClient(RegistryConfig("corp", "https://plugins.example", CC), transport=httpx.MockTransport(echo)) as c,
        pytest.raises(RegistryError) as info,
    ):
        c.whoami()
    assert "refused the client credentials (401: invalid_client bad secret [redacted])" in str(info.value)
    assert SECRET not in str(info.value)


def test_plain_http_is_refused_for_credentials_except_on_loopback() -> None:
    remote = RegistryConfig("corp", "http://plugins.example", {"type": "oauth2", "token": "${CC_SECRET}"})
    with pytest.raises(
        RegistryError, match=r"refusing to send a bearer token over plain http:// to 'plugins\.example'"
    ):
        RegistryClient(remote)
    token_url = {**CC, "token_url": "http://idp.example/token"}
    with pytest.raises(RegistryError, match="refusing to send the client secret over plain http://"):
        RegistryClient(RegistryConfig("corp", "https://plugins.example", token_url))
    for host in ("127.0.0.1", "localhost", "[::1]", "127.0.0.2"):
        RegistryClient(RegistryConfig("corp", f"http://{host}:8080", {"type": "oauth2", "token": "x"})).close()


def test_redact_replaces_every_secret() -> None:
    assert redact("token abcdef and abcdef", ["abcdef", ""]) == "token [redacted] and [redacted]"
