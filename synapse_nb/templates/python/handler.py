"""{{name}}: a generic synapse plugin. Edit execute() to do your work."""

from synapse_nb.sdk import BaseHandler


class {{class_name}}(BaseHandler):
    def setup(self, context):
        # Ahead-of-time initialisation runs once per worker, before the first call.
        self.separators = str.maketrans({c: " " for c in ",.;:!?"})

    async def execute(self, validated_data):
        words = validated_data["text"].translate(self.separators).split()
        return {"result": {"words": len(words), "upper": validated_data["text"].upper()}}
