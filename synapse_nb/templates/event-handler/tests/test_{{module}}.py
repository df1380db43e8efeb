"""Tests for {{name}}; the `plugin` fixture (from synapse_nb) runs the plugin through the synapse runtime."""

import pytest

from synapse_nb.errors import ValidationError


def test_keeps_running_totals_per_currency(plugin):
    plugin.run({"order_id": "a1", "amount": 10.5, "currency": "EUR"})
    plugin.run({"order_id": "a2", "amount": 4, "currency": "USD"})
    out = plugin.run({"order_id": "a3", "amount": 1.25, "currency": "EUR"})
    assert out == {"orders": 3, "totals": {"EUR": 11.75, "USD": 4}}
    assert plugin.state["orders"] == 3


def test_rejects_a_lower_case_currency(plugin):
    with pytest.raises(ValidationError, match="/currency"):
        plugin.run({"order_id": "a1", "amount": 1, "currency": "eur"})
