"""Tests for {{name}}; the `plugin` fixture (from synapse_nb) runs the plugin through the synapse runtime."""

import pytest

from synapse_nb.errors import PluginFailed, ValidationError


def test_dry_run_shows_the_request_without_sending(plugin):
    out = plugin.run({"channel": "#general", "text": "deploy finished", "dry_run": True})
    assert out["sent"] is False
    assert out["request"]["url"] == "https://api.chat.example.com/v1/messages"
    assert out["request"]["body"] == {"channel": "#general", "text": "deploy finished"}


@pytest.fixture
def no_token(monkeypatch):
    # Secrets are read from the host environment when the plugin is activated.
    monkeypatch.delenv("CHAT_API_TOKEN", raising=False)


def test_sending_without_a_token_fails_clearly(no_token, plugin):
    with pytest.raises(PluginFailed, match="CHAT_API_TOKEN is not set"):
        plugin.run({"channel": "#general", "text": "hello"})


def test_rejects_a_channel_without_hash(plugin):
    with pytest.raises(ValidationError, match="/channel"):
        plugin.run({"channel": "general", "text": "hi"})
