"""sentiment-analyzer: the SynapseEngine spec's example plugin.

The handler is written exactly against the spec's contract (``from synapse.sdk import BaseHandler``,
``validate_with_schema`` and ``async def execute``); the scoring is a small lexicon model so that the example
needs no downloads. Each sentence of the input text gets a polarity score in [-1, 1].
"""

import re

from synapse.sdk import BaseHandler

SENTENCE = re.compile(r"[^.!?]+[.!?]*")
WORD = re.compile(r"[a-z']+")
LEXICON = {
    "good": 0.6, "great": 0.8, "excellent": 0.9, "love": 0.8, "like": 0.4, "happy": 0.7, "wonderful": 0.9,
    "fast": 0.3, "nice": 0.5, "best": 0.8, "bad": -0.6, "terrible": -0.9, "awful": -0.9, "hate": -0.8,
    "slow": -0.3, "sad": -0.6, "worst": -0.9, "broken": -0.7, "poor": -0.5, "boring": -0.5,
}
NEGATIONS = {"not", "no", "never", "don't", "isn't", "wasn't"}


def score_sentence(sentence):
    total, hits, negate = 0.0, 0, False
    for word in WORD.findall(sentence.lower()):
        if word in NEGATIONS:
            negate = True
            continue
        if word in LEXICON:
            total += -LEXICON[word] if negate else LEXICON[word]
            hits += 1
        negate = False
    return round(total / hits, 4) if hits else 0.0


async def transform_data(validated_data):
    sentences = [s.strip() for s in SENTENCE.findall(validated_data["text"]) if s.strip()]
    return [score_sentence(s) for s in sentences]


class SentimentAnalyzer(BaseHandler):
    def validate_input(self, payload):
        return self.validate_with_schema('input_schema.json', payload)

    async def execute(self, validated_data):
        # Business logic implementation
        processed = await transform_data(validated_data)
        return {"result": processed}
