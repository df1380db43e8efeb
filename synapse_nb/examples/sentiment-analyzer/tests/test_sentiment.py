"""Tests for the spec's sentiment-analyzer, run through the synapse runtime by the `plugin` fixture."""

import pytest

from synapse_nb.errors import ValidationError


def test_scores_each_sentence(plugin):
    out = plugin.run({"text": "I love this library. The docs are terrible! It is fine."})
    assert out == {"result": [0.8, -0.9, 0.0]}


def test_negation_flips_the_score(plugin):
    assert plugin.run({"text": "This is not good."}) == {"result": [-0.6]}


def test_empty_text_is_rejected_by_the_input_schema(plugin):
    with pytest.raises(ValidationError, match="/text"):
        plugin.run({"text": ""})
