/**
 * JSON Schemas as the plugin panel shows them: one row per property (nested as ``a.b``, items as ``a[]``),
 * and a starting payload for "Try it" taken from the schema's examples and defaults.
 */

export interface ISchemaRow {
  property: string;
  type: string;
  required: boolean;
  constraints: string;
  description: string;
  example: unknown;
}

const CONSTRAINTS = [
  'enum',
  'const',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minItems',
  'maxItems',
  'uniqueItems'
];

type Schema = boolean | { [key: string]: any };

/** The type of a schema in a few words (``string``, ``integer | null``, ``-> other.json``, ``any``). */
export function typeOf(schema: Schema): string {
  if (schema === true || (typeof schema === 'object' && schema !== null && !Object.keys(schema).length)) {
    return 'any';
  }
  if (schema === false) {
    return 'nothing';
  }
  const kind = schema.type;
  if (Array.isArray(kind)) {
    return kind.join(' | ');
  }
  if (typeof kind === 'string') {
    return kind;
  }
  if (typeof schema.$ref === 'string') {
    return `-> ${schema.$ref}`;
  }
  for (const combinator of ['oneOf', 'anyOf', 'allOf']) {
    if (combinator in schema) {
      return combinator;
    }
  }
  return 'any';
}

function constraintsOf(schema: Schema): string {
  if (typeof schema !== 'object' || schema === null) {
    return '';
  }
  const parts = CONSTRAINTS.filter(k => k in schema).map(k => `${k}=${JSON.stringify(schema[k])}`);
  if (schema.additionalProperties === false) {
    parts.push('no other keys');
  }
  return parts.join(', ');
}

/** One row per property of ``schema``, depth first (at most ``limit`` rows: schemas can be huge). */
export function schemaRows(schema: Schema, limit = 200): ISchemaRow[] {
  const rows: ISchemaRow[] = [];
  const visit = (node: Schema, path: string, required: boolean, depth: number): void => {
    if (rows.length >= limit || depth > 12) {
      return;
    }
    if (path) {
      const obj = typeof node === 'object' && node !== null ? node : {};
      rows.push({
        property: path,
        type: typeOf(node),
        required,
        constraints: constraintsOf(node),
        description: typeof obj.description === 'string' ? obj.description : '',
        example: Array.isArray(obj.examples) && obj.examples.length ? obj.examples[0] : obj.default
      });
    }
    if (typeof node !== 'object' || node === null) {
      return;
    }
    const needed = new Set<string>(Array.isArray(node.required) ? node.required : []);
    const props = node.properties && typeof node.properties === 'object' ? node.properties : {};
    for (const [name, sub] of Object.entries(props)) {
      visit(sub as Schema, path ? `${path}.${name}` : name, needed.has(name), depth + 1);
    }
    if (node.items && typeof node.items === 'object' && !Array.isArray(node.items)) {
      visit(node.items, path ? `${path}[]` : '[]', true, depth + 1);
    }
  };
  visit(schema, '', true, 0);
  return rows;
}

/** A first payload for "Try it": the schema's first example, else one built from defaults and examples. */
export function initialPayload(schema: Schema): unknown {
  if (typeof schema !== 'object' || schema === null) {
    return {};
  }
  if (Array.isArray(schema.examples) && schema.examples.length) {
    return schema.examples[0];
  }
  if ('default' in schema) {
    return schema.default;
  }
  if (schema.type === 'object' || schema.properties) {
    const out: { [key: string]: unknown } = {};
    for (const [name, sub] of Object.entries(schema.properties || {})) {
      const s = sub as { [key: string]: any };
      if (s && typeof s === 'object') {
        if (Array.isArray(s.examples) && s.examples.length) {
          out[name] = s.examples[0];
        } else if ('default' in s) {
          out[name] = s.default;
        }
      }
    }
    return out;
  }
  return undefined;
}

/** Whether the form can edit ``schema`` (rjsf needs a schema object; ``$ref`` to sibling files it cannot follow). */
export function formCanRender(schema: Schema): boolean {
  if (typeof schema !== 'object' || schema === null) {
    return false;
  }
  const text = JSON.stringify(schema);
  return !/"\$ref"\s*:\s*"[^#]/.test(text);
}
