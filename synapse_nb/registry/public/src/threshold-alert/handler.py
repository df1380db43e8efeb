"""threshold-alert: an event handler for `metrics.reading` events. A reading above its threshold (or below,
with direction "below") is a breach; breaches are counted per metric in self.state, which survives restarts."""

from synapse.sdk import BaseHandler


class ThresholdAlert(BaseHandler):
    def setup(self, context):
        self.state.setdefault("breaches", {})
        self.state.setdefault("readings", 0)

    async def execute(self, validated_data):
        metric, value, threshold = validated_data["metric"], validated_data["value"], validated_data["threshold"]
        below = validated_data.get("direction", "above") == "below"
        breach = value < threshold if below else value > threshold
        self.state["readings"] += 1
        if breach:
            self.state["breaches"][metric] = self.state["breaches"].get(metric, 0) + 1
        return {
            "alert": breach,
            "metric": metric,
            "value": value,
            "breaches": self.state["breaches"].get(metric, 0),
            "message": f"{metric} = {value} is {'below' if below else 'above'} {threshold}" if breach else "",
        }
