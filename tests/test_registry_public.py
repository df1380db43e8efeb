"""The public index shipped in the package: offline search, explicit trust, and archives that match sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from synapse_nb.cli import main as cli
from synapse_nb.fileset import scan_folder
from synapse_nb.registry.archive import open_archive
from synapse_nb.registry.public import PROJECT_CA, PUBLIC_DIR, public_archive, public_index
from synapse_nb.registry.release import SOURCES
from synapse_nb.signing.certs import utc
from synapse_nb.signing.trust import TrustStore

INTEGRATION_POINTS = {"sentiment-analyzer", "record-normalizer", "iris-classifier", "threshold-alert",
                      "slack-notifier", "salesforce-query"}  # fmt: skip


def test_search_by_category_works_offline_with_no_registry_configured(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["plugin", "search", "--category=nlp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "LATEST", "CATEGORY", "REGISTRY", "DESCRIPTION"]
    assert out[1].split()[:4] == ["sentiment-analyzer", "1.2.0", "nlp", "public"]
    assert len(out) == 2


def test_the_public_index_lists_a_plugin_per_integration_point() -> None:
    index = public_index().index
    assert set(index.plugins) == INTEGRATION_POINTS
    categories = {name: entry.category for name, entry in index.plugins.items()}
    assert categories["slack-notifier"] == categories["salesforce-query"] == "connector"
    assert categories["iris-classifier"] == "ml"
    assert categories["threshold-alert"] == "events"


def test_installing_a_public_plugin_needs_the_project_key_trusted_explicitly(
    synapse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["plugin", "install", "threshold-alert"]) == 4
    err = capsys.readouterr().err
    assert "untrusted" in err
    assert f"`synapse-cli keys trust {PROJECT_CA}`" in err
    assert not (synapse_home / "plugins" / "threshold-alert").exists()
    assert cli(["keys", "trust", str(PROJECT_CA)]) == 0
    assert cli(["plugin", "install", "threshold-alert@^1.0"]) == 0
    assert (synapse_home / "plugins" / "threshold-alert" / "1.0.0" / "synapse.sig.json").is_file()
    assert cli(["plugin", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert [(p["name"], p["version"], p["registry"]) for p in listed["result"]] == [
        ("threshold-alert", "1.0.0", "public")
    ]
    assert listed["meta"]["pins"] == {"threshold-alert": {"registry": "public", "endpoint": "builtin:public"}}
    assert cli(["plugin", "uninstall", "threshold-alert"]) == 0
    assert not (synapse_home / "plugins" / "threshold-alert").exists()


def test_the_shipped_archives_hold_exactly_the_sources_file_sets() -> None:
    """Sources and archives cannot drift: rebuild the file set of every source and compare digests."""
    trust = TrustStore(roots=(x509.load_pem_x509_certificate(PROJECT_CA.read_bytes()),))
    index = public_index().index
    assert {s.name for s in SOURCES} == set(index.plugins)
    for source in SOURCES:
        entry = index.plugins[source.name]
        ((version, release),) = entry.versions.items()
        archive = open_archive(public_archive(release), trust=trust, expected_sha256=release.sha256,
                               expected=(source.name, version))  # fmt: skip
        assert archive.digest == scan_folder(source).digest, f"{source.name}: run python -m synapse_nb.registry.release"
        assert archive.verification.signer_subject.startswith("CN=synapse_nb public plugins")


def test_the_project_certificate_and_index_stay_valid_for_years() -> None:
    ca = x509.load_pem_x509_certificate(PROJECT_CA.read_bytes())
    assert (ca.not_valid_after_utc - utc()).days > 365 * 2
    assert (public_index().index.expires - utc()).days > 365
    assert not [p for p in PUBLIC_DIR.rglob("*") if p.is_file() and b" ".join([b"PRIVATE", b"KEY"]) in p.read_bytes()]


@pytest.mark.parametrize("name", ["record-normalizer", "threshold-alert", "iris-classifier"])
def test_a_public_plugin_installs_and_passes_its_own_tests_in_the_jail(
    name: str, synapse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from .sandbox_helpers import require_nsjail

    require_nsjail()
    assert cli(["keys", "trust", str(PROJECT_CA)]) == 0
    assert cli(["plugin", "install", name]) == 0
    (folder,) = (p for p in (synapse_home / "plugins" / name).iterdir() if p.is_dir())
    capsys.readouterr()
    assert cli(["plugin", "test", str(folder), "--json"]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["ok"] is True
    assert report["result"]["passed"] >= 1
