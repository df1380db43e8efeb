"""Tests for {{name}}; the `plugin` fixture (from synapse_nb) runs the plugin through the synapse runtime."""

import pytest

from synapse_nb.errors import ValidationError


def test_scores_a_positive_review(plugin):
    out = plugin.run({"text": "A great and fast library, I love it"})
    assert out["label"] == "positive"
    assert out["score"] > 0.9


def test_a_batch_is_scored_like_single_calls(plugin):
    texts = ["terrible and slow", "excellent work", "nothing to say"]
    batch = plugin.run_batch([{"text": t} for t in texts])
    assert batch == [plugin.run({"text": t}) for t in texts]
    assert [r["label"] for r in batch] == ["negative", "positive", "negative"]


def test_rejects_empty_text(plugin):
    with pytest.raises(ValidationError, match="/text"):
        plugin.run({"text": ""})
