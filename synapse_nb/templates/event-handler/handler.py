"""{{name}}: an event handler. It is called for every event on the topics in spec.events and keeps
running totals in self.state, which synapse saves at teardown and restores at the next activation."""

from synapse_nb.sdk import BaseHandler


class {{class_name}}(BaseHandler):
    def setup(self, context):
        self.state.setdefault("orders", 0)
        self.state.setdefault("totals", {})

    async def execute(self, validated_data):
        currency = validated_data["currency"]
        totals = self.state["totals"]
        totals[currency] = round(totals.get(currency, 0) + validated_data["amount"], 2)
        self.state["orders"] += 1
        return {"orders": self.state["orders"], "totals": dict(totals)}
