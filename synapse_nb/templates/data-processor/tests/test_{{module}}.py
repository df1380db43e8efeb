"""Tests for {{name}}; the `plugin` fixture (from synapse_nb) runs the plugin through the synapse runtime."""

import pytest

from synapse_nb.errors import ValidationError


def test_cleans_keys_and_values(plugin):
    out = plugin.run({"records": [{"First Name": "  Ada ", "lastName": "Lovelace", "Note": "  "}]})
    assert out == {"records": [{"first_name": "Ada", "last_name": "Lovelace"}], "rejected": []}


def test_rejects_records_missing_a_required_field(plugin):
    out = plugin.run({"records": [{"id": 1, "email": "a@b.c"}, {"id": 2}], "required": ["Email"]})
    assert out["records"] == [{"id": 1, "email": "a@b.c"}]
    assert out["rejected"] == [{"index": 1, "missing": ["email"]}]


def test_records_must_be_objects(plugin):
    with pytest.raises(ValidationError, match="/records/0"):
        plugin.run({"records": ["not a record"]})
