"""record-normalizer: a data processor that makes records from different services look alike.

Keys become snake_case ("First Name", "firstName" -> "first_name"), strings are trimmed, empty strings become
null, numeric strings become numbers ("42" -> 42, "3.5" -> 3.5) unless listed in keep_strings, and null fields
are dropped when drop_nulls is true.
"""

import re

from synapse.sdk import BaseHandler

CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
SEPARATORS = re.compile(r"[^0-9a-zA-Z]+")
INTEGER = re.compile(r"^[+-]?\d+$")
DECIMAL = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def snake(key):
    return SEPARATORS.sub("_", CAMEL.sub("_", key.strip())).strip("_").lower() or "_"


def value_of(value, keep_string):
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
        if not keep_string:
            if INTEGER.match(value):
                return int(value)
            if DECIMAL.match(value):
                return float(value)
        return value
    if isinstance(value, dict):
        return normalize(value, keep_strings=(), drop_nulls=False)
    if isinstance(value, list):
        return [value_of(v, keep_string) for v in value]
    return value


def normalize(record, keep_strings, drop_nulls):
    out = {}
    for key, value in record.items():
        name = snake(key)
        cleaned = value_of(value, name in keep_strings)
        if cleaned is None and drop_nulls:
            continue
        out[name] = cleaned
    return out


class RecordNormalizer(BaseHandler):
    def run_one(self, data):
        keep = set(data.get("keep_strings", []))
        drop = data.get("drop_nulls", False)
        records = [normalize(r, keep, drop) for r in data["records"]]
        return {"records": records, "count": len(records)}

    def execute(self, validated_data):
        return self.run_one(validated_data)

    def execute_batch(self, items):
        return [self.run_one(item) for item in items]
