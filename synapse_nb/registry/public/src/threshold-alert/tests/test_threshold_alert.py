"""Tests for threshold-alert, run through the synapse runtime by the `plugin` fixture."""


def test_a_reading_above_the_threshold_alerts_and_is_counted(plugin):
    assert plugin.run({"metric": "cpu", "value": 50, "threshold": 90})["alert"] is False
    out = plugin.run({"metric": "cpu", "value": 97.5, "threshold": 90})
    assert out["alert"] is True and out["breaches"] == 1
    assert out["message"] == "cpu = 97.5 is above 90"


def test_direction_below(plugin):
    assert plugin.run({"metric": "disk_free", "value": 3, "threshold": 10, "direction": "below"})["alert"] is True
