"""iris-classifier: wraps a scikit-learn model. It is trained once in setup() on the iris data set that ships
with scikit-learn (no download), then every call (or batch) is one predict_proba pass."""

from synapse.sdk import BaseHandler

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class IrisClassifier(BaseHandler):
    def setup(self, context):
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        data = load_iris()
        self.species = [str(name) for name in data.target_names]
        self.model = LogisticRegression(max_iter=1000).fit(data.data, data.target)

    def predict(self, rows):
        probabilities = self.model.predict_proba([[row[f] for f in FEATURES] for row in rows])
        out = []
        for p in probabilities:
            best = int(p.argmax())
            out.append({
                "species": self.species[best],
                "probabilities": {name: round(float(x), 4) for name, x in zip(self.species, p)},
            })
        return out

    def execute(self, validated_data):
        return self.predict([validated_data])[0]

    def execute_batch(self, items):
        return self.predict(items)
