"""The schema widget: a plugin's input and output schemas as readable tables."""

from __future__ import annotations

import json
from typing import Any

from .base import MimeWidget, esc

__all__ = ["SchemaWidget", "schema_rows"]

CONSTRAINTS = (
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
    "additionalProperties",
)


def _type(schema: Any) -> str:
    if schema is True or schema == {}:
        return "any"
    if schema is False:
        return "nothing"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind:
        return str(kind)
    if "$ref" in schema:
        return f"→ {schema['$ref']}"
    for combinator in ("oneOf", "anyOf", "allOf"):
        if combinator in schema:
            return combinator
    return "any"


def _constraints(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    parts = []
    for key in CONSTRAINTS:
        if key in schema and not (key == "additionalProperties" and schema[key] is not False):
            parts.append(f"{key}={json.dumps(schema[key])}")
    return ", ".join(parts)


def schema_rows(schema: Any, path: str = "", required: bool = True) -> list[dict[str, Any]]:
    """One row per property, nested ones as ``a.b`` and array items as ``a[]``."""
    rows = []
    if path:
        example = None
        if isinstance(schema, dict):
            if schema.get("examples"):
                example = schema["examples"][0]
            elif "default" in schema:
                example = schema["default"]
        rows.append(
            {
                "property": path,
                "type": _type(schema),
                "required": required,
                "constraints": _constraints(schema),
                "example": example,
                "description": schema.get("description", "") if isinstance(schema, dict) else "",
            }
        )
    if not isinstance(schema, dict):
        return rows
    needed = set(schema.get("required", []))
    for name, sub in (schema.get("properties") or {}).items():
        rows.extend(schema_rows(sub, f"{path}.{name}" if path else name, name in needed))
    items = schema.get("items")
    if isinstance(items, dict):
        rows.extend(schema_rows(items, f"{path}[]" if path else "[]", True))
    return rows


class SchemaWidget(MimeWidget):
    """Input and output schema of a plugin (or any named schemas) as tables."""

    kind = "schema"

    def __init__(self, schemas: dict[str, Any], *, title: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schemas = schemas
        self.title = title
        self.refresh()

    @classmethod
    def for_plugin(cls, plugin: Any) -> SchemaWidget:
        found = plugin.folder.schemas.schemas
        named = {n: found[n] for n in ("input_schema.json", "output_schema.json") if n in found}
        return cls(named, title=f"{plugin.name} {plugin.manifest.version}")

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        return {name: schema_rows(schema) for name, schema in self.schemas.items()}

    def to_text(self) -> str:
        lines = [self.title] if self.title else []
        for name, rows in self.rows().items():
            lines.append(f"{name}:")
            if not rows:
                lines.append(f"  (top level: {_type(self.schemas[name])}; no properties)")
            for row in rows:
                need = "required" if row["required"] else "optional"
                extra = f" [{row['constraints']}]" if row["constraints"] else ""
                lines.append(f"  {row['property']}: {row['type']} ({need}){extra}")
        return "\n".join(lines)

    def to_html(self) -> str:
        out = [f"<b>{esc(self.title)}</b>"] if self.title else []
        for name, rows in self.rows().items():
            out.append(f"<div><b>{esc(name)}</b> ({esc(_type(self.schemas[name]))})</div>")
            if not rows:
                out.append("<div><i>no properties: accepts any value of this type</i></div>")
                continue
            head = "".join(f"<th>{h}</th>" for h in ("property", "type", "required", "constraints", "example"))
            body = "".join(
                "<tr>"
                f"<td><code>{esc(r['property'])}</code></td><td>{esc(r['type'])}</td>"
                f"<td>{'✓' if r['required'] else ''}</td><td>{esc(r['constraints'])}</td>"
                f"<td>{esc(json.dumps(r['example'])) if r['example'] is not None else ''}</td>"
                "</tr>"
                for r in rows
            )
            out.append(f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>')
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "schemas": self.schemas, "rows": self.rows()}
