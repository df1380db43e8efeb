import { formCanRender, initialPayload, schemaRows, typeOf } from '../schema';

const SCHEMA = {
  type: 'object',
  required: ['text'],
  properties: {
    text: { type: 'string', minLength: 1, description: 'what to analyse', examples: ['I love it'] },
    options: {
      type: 'object',
      properties: { lang: { type: ['string', 'null'], enum: ['en', 'fr', null], default: 'en' } },
      additionalProperties: false
    },
    scores: { type: 'array', items: { type: 'number', minimum: -1, maximum: 1 } }
  }
};

describe('schemaRows', () => {
  it('lists nested properties and array items with their constraints', () => {
    const rows = schemaRows(SCHEMA);
    expect(rows.map(r => r.property)).toEqual(['text', 'options', 'options.lang', 'scores', 'scores[]']);
    expect(rows[0]).toEqual({
      property: 'text',
      type: 'string',
      required: true,
      constraints: 'minLength=1',
      description: 'what to analyse',
      example: 'I love it'
    });
    expect(rows[1].constraints).toBe('no other keys');
    expect(rows[2].type).toBe('string | null');
    expect(rows[2].required).toBe(false);
    expect(rows[4].constraints).toBe('minimum=-1, maximum=1');
  });
  it('stops at the row limit', () => {
    expect(schemaRows(SCHEMA, 2)).toHaveLength(2);
  });
  it('names types of references, combinators and booleans', () => {
    expect(typeOf({ $ref: 'common.json#/x' })).toBe('-> common.json#/x');
    expect(typeOf({ oneOf: [] })).toBe('oneOf');
    expect(typeOf(true)).toBe('any');
    expect(typeOf(false)).toBe('nothing');
  });
});

describe('initialPayload', () => {
  it('takes examples and defaults of the properties', () => {
    expect(initialPayload(SCHEMA)).toEqual({ text: 'I love it' });
    expect(initialPayload({ examples: [{ a: 1 }] })).toEqual({ a: 1 });
    expect(initialPayload(true)).toEqual({});
  });
});

describe('formCanRender', () => {
  it('refuses references to sibling files, which the form cannot follow', () => {
    expect(formCanRender(SCHEMA)).toBe(true);
    expect(formCanRender({ properties: { a: { $ref: '#/definitions/a' } } })).toBe(true);
    expect(formCanRender({ properties: { a: { $ref: 'common.json' } } })).toBe(false);
    expect(formCanRender(true)).toBe(false);
  });
});
