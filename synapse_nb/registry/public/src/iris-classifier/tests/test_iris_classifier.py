"""Tests for iris-classifier, run through the synapse runtime by the `plugin` fixture."""


def test_a_typical_setosa_is_recognised(plugin):
    out = plugin.run({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2})
    assert out["species"] == "setosa"
    assert out["probabilities"]["setosa"] > 0.9


def test_a_batch_is_scored_in_one_pass(plugin):
    rows = [{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}] * 3
    assert [r["species"] for r in plugin.run_batch(rows)] == ["virginica"] * 3
