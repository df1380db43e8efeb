"""Tests for salesforce-query that need no network (the connector itself is tested against a fake Salesforce
REST API in synapse_nb's own test suite)."""

import pytest

from synapse_nb.errors import PluginFailed, ValidationError


@pytest.fixture
def no_credentials(monkeypatch):
    monkeypatch.delenv("SALESFORCE_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("SALESFORCE_INSTANCE_URL", raising=False)


def test_without_credentials_it_fails_clearly(no_credentials, plugin):
    with pytest.raises(PluginFailed, match="SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN must be set"):
        plugin.run({"soql": "SELECT Id FROM Account"})


def test_only_select_statements_are_accepted(plugin):
    with pytest.raises(ValidationError, match="/soql"):
        plugin.run({"soql": "DELETE Account"})
