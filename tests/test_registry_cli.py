"""`synapse-cli registry serve` as a real process, and the notebook functions over the same operations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from synapse_nb.cli import main as cli
from synapse_nb.notebook import registry_view
from synapse_nb.registry.archive import pack
from synapse_nb.signing import ensure_developer_key

from .registry_helpers import CLIENT_SECRET, write_clients


def test_registry_serve_starts_prints_its_url_and_trust_hint_and_serves(synapse_home: Path, tmp_path: Path) -> None:
    ca = ensure_developer_key().ca_cert_path
    clients = write_clients(tmp_path / "clients.yaml")
    env = {**os.environ, "TEST_CI_SECRET": CLIENT_SECRET}
    cmd = [sys.executable, "-m", "synapse_nb", "registry", "serve", str(tmp_path / "reg"), "--port", "0",
           "--clients", str(clients), "--trust", str(ca)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("trusting plugin signers under CN=synapse developer CA")
        assert lines[1].startswith(f"serving registry {tmp_path / 'reg'} at http://127.0.0.1:")
        url = lines[1].split(" at ")[1].strip()
        assert f"clients run: synapse-cli keys trust {tmp_path / 'reg' / 'keys' / 'registry-ca.pem'}" in lines[2]
        token = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("ci", CLIENT_SECRET))
        answer = httpx.get(f"{url}/index.json", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert answer.status_code == 200
        assert answer.json()["payloadType"].endswith("registry-index.v1+json")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert CLIENT_SECRET not in (proc.stderr.read() if proc.stderr else "")


def test_registry_serve_refuses_a_broken_clients_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "clients.yaml"
    bad.write_text("clients:\n  - client_id: ci\n    scopes: [admin]\n")
    assert cli(["registry", "serve", str(tmp_path / "reg"), "--port", "0", "--clients", str(bad)]) == 2
    assert "clients[0]: 'client_secret' must be a non-empty string" in capsys.readouterr().err


def test_the_notebook_functions_return_dataframes(synapse_home: Path, signed_example: Path, tmp_path: Path) -> None:
    found = registry_view.search(category="nlp")
    assert list(found.columns) == registry_view.SEARCH_COLUMNS
    assert found.iloc[0]["name"] == "sentiment-analyzer"
    assert found.iloc[0]["registry"] == "public"
    installed = registry_view.install(str(pack(signed_example, tmp_path).path))
    assert installed.iloc[0]["version"] == "1.2.0"
    assert installed.iloc[0]["registry"] == "local"
    assert list(registry_view.installed()["name"]) == ["sentiment-analyzer"]
