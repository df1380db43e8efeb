"""Tests for {{name}}; the `plugin` fixture (from synapse_nb) runs the plugin through the synapse runtime."""

import pytest

from synapse_nb.errors import ValidationError


def test_counts_words_and_upper_cases(plugin):
    assert plugin.run({"text": "Hello, brave world!"}) == {
        "result": {"words": 3, "upper": "HELLO, BRAVE WORLD!"}
    }


def test_rejects_input_without_text(plugin):
    with pytest.raises(ValidationError, match="'text' is a required property"):
        plugin.run({"txt": "typo"})
