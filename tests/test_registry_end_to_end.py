"""The whole path: pack -> publish -> search -> install -> run, on another SYNAPSE_HOME, checked at every step."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from synapse_nb.cli import main as cli
from synapse_nb.registry.installed import installed_plugin_folders
from synapse_nb.signing import ensure_developer_key, verify_folder

from .registry_helpers import client_credentials_entry, configure, running_registry
from .sandbox_helpers import require_nsjail


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_plugin_goes_from_pack_to_run_on_another_machine(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    require_nsjail()
    publisher_ca = ensure_developer_key().ca_cert_path
    with running_registry(tmp_path / "reg") as reg:
        # Publisher: pack (reproducible, verified) and publish.
        assert cli(["plugin", "pack", str(signed_example), "-o", str(tmp_path / "dist"), "--json"]) == 0
        packed = last_json(capsys)["result"]
        archive = Path(packed["archive"])
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == packed["sha256"]
        configure(synapse_home, client_credentials_entry(reg))
        assert cli(["plugin", "publish", str(archive), "--registry", "corp", "--json"]) == 0
        published = last_json(capsys)["result"]
        assert (published["status"], published["sha256"]) == ("published", packed["sha256"])
        assert published["compat_verdict"] == "not checked (first version)"

        # Consumer: a fresh SYNAPSE_HOME that trusts the registry's root and the publisher's CA.
        consumer = tmp_path / "consumer-home"
        consumer.mkdir()
        monkeypatch.setenv("SYNAPSE_HOME", str(consumer))
        assert cli(["keys", "trust", str(reg.root)]) == 0
        assert cli(["keys", "trust", str(publisher_ca)]) == 0
        configure(consumer, client_credentials_entry(reg, scope="read"))
        assert cli(["plugin", "search", "sentiment", "--json"]) == 0
        hits = last_json(capsys)["result"]
        assert {(h["name"], h["version"], h["registry"]) for h in hits} >= {("sentiment-analyzer", "1.2.0", "corp")}
        # The same name is also in the built-in public index: the consumer must say which one.
        assert cli(["plugin", "install", "sentiment-analyzer@~1.2"]) == 2
        assert "offered by several registries (corp, public)" in capsys.readouterr().err
        assert cli(["plugin", "install", "sentiment-analyzer@~1.2", "--registry", "corp", "--json"]) == 0
        installed = last_json(capsys)["result"]
        folder = Path(installed["path"])
        assert folder == consumer / "plugins" / "sentiment-analyzer" / "1.2.0"
        assert installed["sha256"] == packed["sha256"]
        assert verify_folder(folder).digest == packed["digest"]
        assert installed_plugin_folders() == [folder]

        # The pin: the same name from the public registry is now refused, until the pin is moved.
        assert cli(["plugin", "install", "sentiment-analyzer", "--registry", "public"]) == 4
        assert "is pinned to registry 'corp'" in capsys.readouterr().err

        # Run the installed plugin through the sandbox.
        assert cli(["plugin", "run", str(folder), "--json", "--input", '{"text": "I love it. It is terrible!"}']) == 0
        run = last_json(capsys)
        assert run["result"] == {"result": [0.8, -0.9]}
        assert run["meta"]["isolation"].startswith("nsjail")
