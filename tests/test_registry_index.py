"""The signed registry index: verification, expiry, shape checks, and rollback protection on the client."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from synapse_nb.errors import SignatureError
from synapse_nb.registry.cache import accept, check_rollback
from synapse_nb.registry.index import Index, PluginEntry, Release, sign_index, verify_index
from synapse_nb.registry.pki import ensure_identity
from synapse_nb.signing.trust import TrustStore

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SHA = "ab" * 32


def index(version: int = 1, *, expires: dt.datetime | None = None, url: str = f"blobs/sha256/{SHA}") -> Index:
    release = Release(url, SHA, 1234, False, ("any",))
    entry = PluginEntry("demo", {"1.0.0": release, "1.1.0": Release(url, SHA, 1, True)}, "nlp", ("t",), "a demo")
    return Index(version, expires or NOW + dt.timedelta(days=1), {"demo": entry})


@pytest.fixture
def identity(tmp_path: Path):  # type: ignore[no-untyped-def]
    return ensure_identity(tmp_path / "keys", "registry", "test registry")[0]


def test_a_signed_index_verifies_against_the_registry_root(identity) -> None:  # type: ignore[no-untyped-def]
    data = sign_index(index(7), identity.key, identity.chain)
    signed = verify_index(data, registry="corp", trust=TrustStore(roots=(identity.ca,)))
    assert signed.index.version == 7
    entry = signed.index.plugins["demo"]
    assert entry.latest() == "1.0.0"  # 1.1.0 is yanked
    assert entry.versions["1.0.0"].sha256 == SHA
    assert signed.signer == "CN=test registry,O=synapse_nb developer"


def test_an_untrusted_altered_or_expired_index_is_refused(identity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trust = TrustStore(roots=(identity.ca,))
    data = sign_index(index(), identity.key, identity.chain)
    with pytest.raises(SignatureError, match=r"index untrusted: .*keys trust ROOT\.pem") as info:
        verify_index(data, registry="corp", trust=TrustStore())
    assert info.value.exit_code == 4
    envelope = json.loads(data)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["plugins"]["demo"]["versions"]["1.1.0"]["yanked"] = False
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(SignatureError, match="index bad-signature"):
        verify_index(json.dumps(envelope).encode(), registry="corp", trust=trust)
    stale = sign_index(index(expires=NOW - dt.timedelta(seconds=1)), identity.key, identity.chain)
    with pytest.raises(SignatureError, match="registry 'corp': index expired: it expired at") as info:
        verify_index(stale, registry="corp", trust=trust)
    assert info.value.reason == "expired"
    other = ensure_identity(tmp_path / "other", "registry", "impostor")[0]
    with pytest.raises(SignatureError, match="index untrusted"):
        verify_index(sign_index(index(), other.key, other.chain), registry="corp", trust=trust)


def test_a_signed_but_malformed_index_is_refused(identity) -> None:  # type: ignore[no-untyped-def]
    trust = TrustStore(roots=(identity.ca,))
    bad = Index(1, NOW + dt.timedelta(days=1), {"Bad_Name": PluginEntry("Bad_Name", {})})
    with pytest.raises(SignatureError, match="index malformed: plugin name 'Bad_Name' is not a lower-case DNS label"):
        verify_index(sign_index(bad, identity.key, identity.chain), registry="corp", trust=trust)
    escaping = sign_index(index(url="../../etc/passwd"), identity.key, identity.chain)
    signed = verify_index(escaping, registry="corp", trust=trust)  # searchable, but no release can be used
    with pytest.raises(SignatureError, match=r"url '\.\./\.\./etc/passwd' is not a relative path under the") as info:
        signed.index.plugins["demo"]
    assert info.value.exit_code == 4
    for url in ("https://evil.example/x.synapse", "/abs/path", "blobs//x", "a/./b"):
        with pytest.raises(SignatureError, match="is not a relative path"):
            verify_index(
                sign_index(index(url=url), identity.key, identity.chain), registry="c", trust=trust
            ).index.plugins["demo"]


def test_the_client_refuses_an_older_index_or_a_different_one_with_the_same_version(
    identity, synapse_home: Path
) -> None:  # type: ignore[no-untyped-def]
    trust = TrustStore(roots=(identity.ca,))

    def signed(version: int, description: str = "a demo"):  # type: ignore[no-untyped-def]
        idx = index(version)
        entry = idx.plugins["demo"]
        idx = Index(version, idx.expires, {"demo": PluginEntry("demo", entry.versions, "nlp", (), description)})
        return verify_index(sign_index(idx, identity.key, identity.chain), registry="corp", trust=trust)

    accept("corp", signed(3), endpoint="https://r", etag=None)
    accept("corp", signed(3), endpoint="https://r", etag=None)  # the very same index again is fine
    with pytest.raises(
        SignatureError, match="index rollback: the registry served index version 2, but version 3"
    ) as info:
        accept("corp", signed(2), endpoint="https://r", etag=None)
    assert (info.value.exit_code, info.value.reason) == (4, "rollback")
    with pytest.raises(SignatureError, match="a different index with the same version 3"):
        check_rollback("corp", signed(3, "changed"))
    accept("corp", signed(4), endpoint="https://r", etag=None)
    state = json.loads((synapse_home / "registry" / "corp" / "state.json").read_text())
    assert state["highest_version"] == 4
