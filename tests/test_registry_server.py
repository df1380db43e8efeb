"""A real registry on loopback: OAuth2, publishing, immutability, concurrency, yank, rollback and expiry."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from synapse_nb.cli import main as cli
from synapse_nb.registry.archive import pack
from synapse_nb.registry.index import sign_index
from synapse_nb.signing import sign_folder

from .registry_helpers import CLIENT_SECRET, READER_SECRET, client_credentials_entry, configure, running_registry


def bump(folder: Path, version: str, tmp_path: Path, text: str = "") -> Path:
    """A signed copy of ``folder`` at ``version`` (``text`` changes the handler's bytes)."""
    target = tmp_path / f"{folder.name}-{version}{'-' + str(abs(hash(text))) if text else ''}"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("synapse.sig.json", "__pycache__"))
    manifest = target / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.2.0", f"version: {version}"))
    if text:
        (target / "handler.py").write_text((target / "handler.py").read_text() + f"\n# {text}\n")
    sign_folder(target)
    return target


def test_the_token_endpoint_follows_rfc_6749_client_credentials(synapse_home: Path, tmp_path: Path) -> None:
    with running_registry(tmp_path / "reg") as reg:
        meta = httpx.get(f"{reg.url}/.well-known/oauth-authorization-server").json()
        assert meta["token_endpoint"] == f"{reg.url}/oauth/token"
        assert meta["grant_types_supported"] == ["client_credentials"]
        basic = httpx.post(
            meta["token_endpoint"], data={"grant_type": "client_credentials"}, auth=("ci", CLIENT_SECRET)
        )
        assert basic.status_code == 200
        assert basic.headers["cache-control"] == "no-store"
        token = basic.json()
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 3600
        assert token["scope"] == "publish read"
        post = httpx.post(meta["token_endpoint"], data={"grant_type": "client_credentials", "client_id": "reader",
                                                        "client_secret": READER_SECRET, "scope": "read"})  # fmt: skip
        assert post.json()["scope"] == "read"
        wrong = httpx.post(meta["token_endpoint"], data={"grant_type": "client_credentials"}, auth=("ci", "nope"))
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
        greedy = httpx.post(meta["token_endpoint"], data={"grant_type": "client_credentials", "scope": "publish"},
                            auth=("reader", READER_SECRET))  # fmt: skip
        assert (greedy.status_code, greedy.json()["error"]) == (400, "invalid_scope")
        grant = httpx.post(meta["token_endpoint"], data={"grant_type": "password"}, auth=("ci", CLIENT_SECRET))
        assert grant.json()["error"] == "unsupported_grant_type"
        assert httpx.get(f"{reg.url}/index.json").status_code == 401
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert httpx.get(f"{reg.url}/index.json", headers=headers).status_code == 200


def test_publish_search_and_install_with_client_credentials(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg") as reg:
        configure(synapse_home, client_credentials_entry(reg))
        assert cli(["plugin", "publish", str(signed_example), "--registry", "corp"]) == 0
        out = capsys.readouterr().out
        assert "published: sentiment-analyzer 1.2.0 on corp" in out
        assert "compatibility: not checked (first version)" in out
        assert cli(["plugin", "search", "--category", "nlp", "--registry", "corp", "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)["result"]
        assert [(h["name"], h["version"], h["registry"]) for h in hits] == [("sentiment-analyzer", "1.2.0", "corp")]
        assert cli(["plugin", "install", "sentiment-analyzer@^1", "--registry", "corp"]) == 0
        folder = synapse_home / "plugins" / "sentiment-analyzer" / "1.2.0"
        assert (folder / "synapse.sig.json").is_file()
        assert CLIENT_SECRET not in capsys.readouterr().out
        token_file = synapse_home / "registry" / "corp" / "token.json"
        assert token_file.stat().st_mode & 0o777 == 0o600


def test_publishing_the_same_version_twice_is_refused_unless_the_bytes_are_the_same(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg") as reg:
        configure(synapse_home, client_credentials_entry(reg))
        archive = pack(signed_example, tmp_path / "a").path
        assert cli(["plugin", "publish", str(archive), "--registry", "corp"]) == 0
        assert cli(["plugin", "publish", str(archive), "--registry", "corp"]) == 0
        assert "unchanged: sentiment-analyzer 1.2.0" in capsys.readouterr().out
        changed = bump(signed_example, "1.2.0", tmp_path, text="other bytes")
        assert cli(["plugin", "publish", str(changed), "--registry", "corp"]) == 9
        err = capsys.readouterr().err
        assert "409" in err
        assert "versions are immutable: publish a new version" in err


def test_two_concurrent_publishes_of_different_versions_both_land(
    synapse_home: Path, signed_example: Path, tmp_path: Path
) -> None:
    with running_registry(tmp_path / "reg") as reg:
        archives = [pack(bump(signed_example, v, tmp_path), tmp_path / v).path.read_bytes() for v in ("1.3.0", "1.4.0")]
        token = reg.token()
        before = reg.store._catalog().get("index_version", 0)
        results: list[int] = []

        def upload(data: bytes, version: str) -> None:
            answer = httpx.put(f"{reg.url}/api/v1/plugins/sentiment-analyzer/{version}", content=data,
                               headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
            results.append(answer.status_code)

        threads = [
            threading.Thread(target=upload, args=(d, v)) for d, v in zip(archives, ("1.3.0", "1.4.0"), strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [201, 201]
        catalog = reg.store._catalog()
        assert sorted(catalog["plugins"]["sentiment-analyzer"]["versions"]) == ["1.3.0", "1.4.0"]
        assert catalog["index_version"] == before + 2
        index = httpx.get(f"{reg.url}/index.json", headers={"Authorization": f"Bearer {token}"}).json()
        payload = json.loads(__import__("base64").b64decode(index["payload"]))
        assert sorted(payload["plugins"]["sentiment-analyzer"]["versions"]) == ["1.3.0", "1.4.0"]
        assert payload["version"] == before + 2


def test_a_yanked_version_is_hidden_from_resolution_but_not_deleted(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg") as reg:
        configure(synapse_home, client_credentials_entry(reg))
        for version in ("1.2.0", "1.2.1"):
            assert cli(["plugin", "publish", str(bump(signed_example, version, tmp_path)), "--registry", "corp"]) == 0
        assert cli(["plugin", "yank", "sentiment-analyzer@1.2.1", "--registry", "corp", "--reason", "broken"]) == 0
        sha = reg.store._catalog()["plugins"]["sentiment-analyzer"]["versions"]["1.2.1"]["sha256"]
        assert reg.store.blob_path(sha).is_file()
        assert cli(["plugin", "install", "sentiment-analyzer@^1.2", "--registry", "corp", "--json"]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["result"]["version"] == "1.2.0"
        assert cli(["plugin", "install", "sentiment-analyzer@1.2.1", "--registry", "corp"]) == 9
        assert "yanked: 1.2.1" in capsys.readouterr().err


def test_wrong_missing_and_expired_tokens_exit_9_without_printing_the_token(
    synapse_home: Path,
    signed_example: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running_registry(tmp_path / "reg", ttl=1) as reg:
        auth = "    auth:\n      type: oauth2\n      token: ${CORP_TOKEN}\n"
        entry = f"registries:\n  - name: corp\n    endpoint: {reg.url}\n" + auth
        configure(synapse_home, entry)
        monkeypatch.setenv("CORP_TOKEN", "wrong-token-value-123456")
        assert cli(["plugin", "search", "--registry", "corp"]) == 9
        err = capsys.readouterr().err
        assert "401 unauthorized (the token is missing, wrong or expired)" in err
        assert "wrong-token-value-123456" not in err
        monkeypatch.setenv("CORP_TOKEN", reg.token())
        assert cli(["plugin", "search", "--registry", "corp"]) == 0
        time.sleep(1.2)  # the static token expires; it is not refreshed
        shutil.rmtree(synapse_home / "registry" / "corp")
        assert cli(["plugin", "search", "--registry", "corp"]) == 9
        assert "401 unauthorized" in capsys.readouterr().err
        configure(synapse_home, f"registries:\n  - name: corp\n    endpoint: {reg.url}\n")
        assert cli(["plugin", "search", "--registry", "corp"]) == 9
        assert "it requires authentication: add `auth:`" in capsys.readouterr().err
        configure(synapse_home, client_credentials_entry(reg, scope="read"))
        assert cli(["plugin", "publish", str(signed_example), "--registry", "corp"]) == 9
        assert "403 forbidden: the token of 'ci' lacks the 'publish' scope" in capsys.readouterr().err


def test_an_expired_cached_client_credentials_token_is_refreshed_once(
    synapse_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg", ttl=2) as reg:
        configure(synapse_home, client_credentials_entry(reg))
        assert cli(["registry", "login", "corp"]) == 0
        first = json.loads((synapse_home / "registry" / "corp" / "token.json").read_text())
        assert first["renew_at"] < first["expires_at"]
        time.sleep(2.1)
        assert cli(["registry", "login", "corp"]) == 0
        second = json.loads((synapse_home / "registry" / "corp" / "token.json").read_text())
        assert second["access_token"] != first["access_token"]
        # A token the server forgot (restart) answers 401: the client fetches a new one and retries once.
        token_path = synapse_home / "registry" / "corp" / "token.json"
        record = json.loads(token_path.read_text())
        record["access_token"] = "forgotten-by-the-server"
        token_path.write_text(json.dumps(record))
        token_path.chmod(0o600)
        from synapse_nb.registry.auth import TokenCache

        TokenCache._memory.clear()
        assert cli(["registry", "login", "corp"]) == 0
        assert "logged in to corp as 'ci'" in capsys.readouterr().out


def test_bearer_credentials_are_refused_over_plain_http_to_a_remote_host(
    synapse_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECURE_STORE_KEY", "a-very-secret-token")
    configure(synapse_home, "registries:\n  - name: corp\n    endpoint: http://plugins.acme.com\n    auth:\n"
                            "      type: oauth2\n      token: ${SECURE_STORE_KEY}\n")  # fmt: skip
    assert cli(["plugin", "search", "--registry", "corp"]) == 9
    err = capsys.readouterr().err
    assert "refusing to send a bearer token over plain http:// to 'plugins.acme.com'" in err
    assert "a-very-secret-token" not in err


def test_index_rollback_and_expiry_are_refused_with_exit_4(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg", anonymous_read=True) as reg:
        configure(synapse_home, f"registries:\n  - name: corp\n    endpoint: {reg.url}\n")
        assert cli(["plugin", "search", "--registry", "corp"]) == 0
        old = (reg.folder / "index.json").read_bytes()
        token = reg.token()
        data = pack(signed_example, tmp_path / "a").path.read_bytes()
        answer = httpx.put(f"{reg.url}/api/v1/plugins/sentiment-analyzer/1.2.0", content=data,
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert answer.status_code == 201
        assert cli(["plugin", "search", "--registry", "corp"]) == 0  # cached index is fresh: no fetch
        shutil.rmtree(synapse_home / "registry" / "corp" / "search.json", ignore_errors=True)
        (synapse_home / "registry" / "corp" / "search.json").unlink(missing_ok=True)
        state = json.loads((synapse_home / "registry" / "corp" / "state.json").read_text())
        state["fetched_at"] = 0
        (synapse_home / "registry" / "corp" / "state.json").write_text(json.dumps(state))
        assert cli(["plugin", "search", "--registry", "corp"]) == 0  # fetches the newer index
        capsys.readouterr()
        (reg.folder / "index.json").write_bytes(old)  # a stale mirror replays an older, validly signed index
        state = json.loads((synapse_home / "registry" / "corp" / "state.json").read_text())
        state["fetched_at"], state["etag"] = 0, None
        (synapse_home / "registry" / "corp" / "state.json").write_text(json.dumps(state))
        assert cli(["plugin", "search", "--registry", "corp"]) == 4
        assert (
            "index rollback: the registry served index version 1, but version 2 was accepted" in capsys.readouterr().err
        )
        expired = reg.store.build_index(
            reg.store._catalog(), 99, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
        )
        (reg.folder / "index.json").write_bytes(sign_index(expired, reg.store.identity.key, reg.store.identity.chain))
        assert cli(["plugin", "search", "--registry", "corp"]) == 4
        assert "index expired: it expired at" in capsys.readouterr().err


def test_an_index_signed_by_an_untrusted_key_is_refused(synapse_home: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with running_registry(tmp_path / "reg", anonymous_read=True) as reg:
        configure(synapse_home, f"registries:\n  - name: corp\n    endpoint: {reg.url}\n")
        for root in (synapse_home / "trust" / "roots").glob("*.pem"):
            root.unlink()  # nobody trusts the registry's root any more
        assert cli(["plugin", "search", "--registry", "corp"]) == 4
        assert "index untrusted" in capsys.readouterr().err


def test_uploads_signed_outside_the_registrys_trust_store_are_refused(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg", trust_developer=False) as reg:
        configure(synapse_home, client_credentials_entry(reg))
        assert cli(["plugin", "publish", str(signed_example), "--registry", "corp"]) == 9
        assert "422: refused by the registry's trust store: sentiment-analyzer: untrusted" in capsys.readouterr().err


def test_jwt_access_tokens_from_an_external_issuer_are_accepted_by_verification(
    synapse_home: Path, tmp_path: Path
) -> None:
    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    issuer = "https://login.example.com/"
    extra = f"issuers:\n  - issuer: {issuer}\n    audience: synapse-registry\n    jwks_file: {jwks}\n"

    def token(**claims: object) -> str:
        now = int(time.time())
        base = {"iss": issuer, "aud": "synapse-registry", "sub": "svc", "client_id": "svc", "iat": now,
                "exp": now + 60, "jti": "j1", "scope": "read publish"}  # fmt: skip
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}, {**base, **claims}, key)

    with running_registry(tmp_path / "reg", extra=extra) as reg:

        def who(value: str) -> httpx.Response:
            return httpx.get(f"{reg.url}/api/v1/whoami", headers={"Authorization": f"Bearer {value}"})

        answer = who(token())
        assert answer.status_code == 200
        assert answer.json() == {"client_id": "svc", "scopes": ["publish", "read"], "issuer": issuer}
        assert who(token(aud="someone-else")).status_code == 401
        assert who(token(exp=int(time.time()) - 10)).status_code == 401
        assert who(token(iss="https://evil.example/")).status_code == 401
        other = ECKey.generate_key("P-256", parameters={"kid": "k1"})
        forged = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}, {"iss": issuer}, other)
        assert who(forged).status_code == 401
