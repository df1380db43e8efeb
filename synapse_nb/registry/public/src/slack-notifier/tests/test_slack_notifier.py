"""Tests for slack-notifier that need no network (the connector itself is tested against a fake Slack API in
synapse_nb's own test suite)."""

import pytest

from synapse_nb.errors import PluginFailed, ValidationError


@pytest.fixture
def no_token(monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def test_without_a_token_it_fails_clearly(no_token, plugin):
    with pytest.raises(PluginFailed, match="SLACK_BOT_TOKEN is not set"):
        plugin.run({"channel": "#general", "text": "hello"})


def test_a_channel_must_be_an_id_or_a_hash_name(plugin):
    with pytest.raises(ValidationError, match="/channel"):
        plugin.run({"channel": "general", "text": "hello"})
