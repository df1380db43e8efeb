"""{{name}}: records in, records out. Each record is cleaned; records missing a required field are rejected."""

import re

from synapse_nb.sdk import BaseHandler

CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
NON_WORD = re.compile(r"[^0-9a-zA-Z]+")


def snake_case(key):
    return NON_WORD.sub("_", CAMEL.sub("_", key.strip())).strip("_").lower()


def clean_value(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class {{class_name}}(BaseHandler):
    async def execute(self, validated_data):
        required = [snake_case(k) for k in validated_data.get("required", [])]
        records, rejected = [], []
        for index, record in enumerate(validated_data["records"]):
            cleaned = {snake_case(k): clean_value(v) for k, v in record.items()}
            cleaned = {k: v for k, v in cleaned.items() if v is not None}
            missing = [k for k in required if k not in cleaned]
            if missing:
                rejected.append({"index": index, "missing": missing})
            else:
                records.append(cleaned)
        return {"records": records, "rejected": rejected}
