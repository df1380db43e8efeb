"""{{name}}: wraps a model. The model is loaded once in setup(); batches are scored in one pass.

Replace model.json and predict_scores() with your own model (scikit-learn, PyTorch...); keep loading in
setup() so that no call pays for it.
"""

import json
import math
import re
from pathlib import Path

from synapse_nb.sdk import BaseHandler

TOKEN = re.compile(r"[a-z']+")


class {{class_name}}(BaseHandler):
    def setup(self, context):
        model = json.loads((Path(context.plugin_dir) / "model.json").read_text())
        self.weights = model["weights"]
        self.bias = model["bias"]
        self.threshold = model["threshold"]

    def predict_scores(self, texts):
        scores = []
        for text in texts:
            z = self.bias + sum(self.weights.get(tok, 0.0) for tok in TOKEN.findall(text.lower()))
            scores.append(1.0 / (1.0 + math.exp(-z)))
        return scores

    def label(self, score):
        return {"label": "positive" if score >= self.threshold else "negative", "score": round(score, 6)}

    def execute(self, validated_data):
        return self.label(self.predict_scores([validated_data["text"]])[0])

    def execute_batch(self, items):
        # One vectorised pass over the whole batch instead of one call per item.
        return [self.label(s) for s in self.predict_scores([item["text"] for item in items])]
