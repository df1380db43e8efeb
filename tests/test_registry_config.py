"""Registries in the configuration: the spec's `.synapse/config` block verbatim, approval, add, list, login."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synapse_nb.cli import main as cli
from synapse_nb.config import ConfigError, load_config
from synapse_nb.registry.settings import configured_registries

from .registry_helpers import configure, running_registry

SPEC_BLOCK = """\
# .synapse/config
registries:
  - name: corporate-registry
    endpoint: https://plugins.acme.com
    auth:
      type: oauth2
      token: ${SECURE_STORE_KEY}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    (folder / ".synapse").mkdir(parents=True)
    monkeypatch.chdir(folder)
    return folder


def test_the_spec_block_verbatim_is_a_valid_project_config(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".synapse" / "config").write_text(SPEC_BLOCK)
    (registry,) = configured_registries()
    assert (registry.name, registry.endpoint, registry.kind, registry.source) == (
        "corporate-registry", "https://plugins.acme.com", "token", "project")  # fmt: skip
    assert cli(["registry", "list"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert (
        "corporate-registry  https://plugins.acme.com  [project]  auth: oauth2 static token (${SECURE_STORE_KEY})"
        in line
    )


def test_a_project_registry_gets_no_credentials_until_the_user_approves_it(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".synapse" / "config").write_text(SPEC_BLOCK)
    monkeypatch.setenv("SECURE_STORE_KEY", "tok-123456789")
    assert cli(["plugin", "search", "--registry", "corporate-registry"]) == 9
    err = capsys.readouterr().err
    assert "comes from a project's .synapse/config and would send oauth2 static token (${SECURE_STORE_KEY})" in err
    assert "`synapse-cli registry login corporate-registry`" in err
    assert "tok-123456789" not in err


def test_the_spec_block_works_against_a_real_registry_once_approved(
    project: Path,
    synapse_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running_registry(tmp_path / "reg") as reg:
        (project / ".synapse" / "config").write_text(SPEC_BLOCK.replace("https://plugins.acme.com", reg.url))
        monkeypatch.setenv("SECURE_STORE_KEY", reg.token(scope="read"))
        assert cli(["registry", "login", "corporate-registry"]) == 0
        assert "logged in to corporate-registry as 'ci' (scopes: read)" in capsys.readouterr().out
        assert cli(["plugin", "search", "--registry", "corporate-registry", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["ok"] is True
        moved = reg.url.replace("127.0.0.1", "localhost")
        (project / ".synapse" / "config").write_text(SPEC_BLOCK.replace("https://plugins.acme.com", moved))
        assert cli(["plugin", "search", "--registry", "corporate-registry"]) == 9  # the entry changed: ask again
        assert "registry login corporate-registry" in capsys.readouterr().err


def test_a_missing_environment_variable_is_named_when_the_token_is_used(
    synapse_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECURE_STORE_KEY", raising=False)
    configure(synapse_home, SPEC_BLOCK)
    assert cli(["plugin", "search", "--registry", "corporate-registry"]) == 2
    assert (
        "registry 'corporate-registry' auth.token: environment variable SECURE_STORE_KEY is not set"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("entry", "pointer"),
    [
        ("  - name: Corp_Registry\n    endpoint: https://x.example\n", "/registries/0/name"),
        ("  - name: corp\n    endpoint: ftp://x.example\n", "/registries/0/endpoint"),
        ("  - name: corp\n    endpoint: https://x.example\n    auth: {type: oauth2}\n", "/registries/0/auth"),
        ("  - name: corp\n    endpoint: https://x.example\n    mirror: true\n", "/registries/0/mirror"),
    ],
)
def test_bad_registry_entries_are_located(synapse_home: Path, entry: str, pointer: str) -> None:
    configure(synapse_home, "registries:\n" + entry)
    with pytest.raises(ConfigError, match=f"config:\\d+:\\d+: {pointer}"):
        load_config()


def test_registry_add_writes_the_spec_shape_to_the_home_config(synapse_home: Path) -> None:
    assert cli(["registry", "add", "corp", "https://plugins.acme.com", "--token-env", "SECURE_STORE_KEY"]) == 0
    (registry,) = configured_registries()
    assert registry.entry() == {"name": "corp", "endpoint": "https://plugins.acme.com",
                                "auth": {"type": "oauth2", "token": "${SECURE_STORE_KEY}"}}  # fmt: skip
    assert registry.source == "home"
    assert cli(["registry", "add", "corp", "https://other.example"]) == 2
    assert cli(["registry", "add", "public", "https://other.example"]) == 2
