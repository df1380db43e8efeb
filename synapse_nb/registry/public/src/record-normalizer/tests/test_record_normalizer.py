"""Tests for record-normalizer, run through the synapse runtime by the `plugin` fixture."""


def test_keys_values_and_numbers_are_normalised(plugin):
    out = plugin.run({"records": [{"First Name": " Ada ", "accountId": "0042", "score": "3.5", "note": ""}],
                      "keep_strings": ["account_id"]})
    assert out == {"records": [{"first_name": "Ada", "account_id": "0042", "score": 3.5, "note": None}], "count": 1}


def test_drop_nulls_removes_empty_fields(plugin):
    out = plugin.run({"records": [{"a": "", "b": None, "c": "x"}], "drop_nulls": True})
    assert out["records"] == [{"c": "x"}]
