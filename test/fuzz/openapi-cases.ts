/**
 * Property-based cases generated from the served OpenAPI document (GET /docs/json), shared by
 * test/fuzz/openapi.test.ts (a few hundred cases per `npm test`) and scripts/fuzz.ts (`npm run fuzz`,
 * thousands of cases with a summary).
 *
 * For every path and method of the document: fast-check arbitraries for the path parameters (valid
 * by their schema, and invalid), the query string, the headers (junk, content types, Idempotency-Key,
 * credentials) and the body (valid by the request-body JSON Schema, and invalid in many ways). Each
 * case runs through `app.inject()` and its answer is checked against the invariants of the contract:
 *
 * - no 5xx, ever;
 * - every status >= 400 is JSON `{ error: { code, message } }` with `ERROR_STATUS[code] === status`;
 * - the server still answers GET /healthz 200 afterwards;
 * - a refused request (4xx), and any GET/HEAD, changes nothing observable: the row counts of the
 *   records, the signed-in user's cart and balance, and no new session cookie;
 * - a JSON body over the body limit on a route that reads bodies is a 413, never accepted.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pg from 'pg';
import { ERROR_STATUS, type ErrorCode } from '../../src/kernel/errors.ts';
import type { TestServer } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

/** The part of JSON Schema (as @fastify/swagger writes TypeBox schemas into OpenAPI 3.0) used here. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  nullable?: boolean;
  $ref?: string;
}

interface OpenApiParameter {
  in: 'path' | 'query' | 'header' | 'cookie';
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}

interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, unknown>;
  tags?: string[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation | OpenApiParameter[]>>;
  components?: { schemas?: Record<string, JsonSchema>; parameters?: Record<string, OpenApiParameter> };
}

export interface Operation {
  /** e.g. `GET /api/orders/{id}` */
  key: string;
  method: string;
  /** The OpenAPI template, e.g. `/api/orders/{id}`. */
  path: string;
  pathParams: Array<{ name: string; schema: JsonSchema }>;
  headerParams: Array<{ name: string; schema: JsonSchema; required: boolean }>;
  body: { schema: JsonSchema; required: boolean } | undefined;
  /** An (IK) route: it takes an Idempotency-Key header. */
  idempotent: boolean;
  /** The statuses the document lists for it. */
  documented: number[];
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/**
 * Routes served but not fuzzed, each with its reason. Every operation of the document is fuzzed;
 * these are the routes that are not in it.
 */
export const EXCLUDED_ROUTES = [
  {
    route: 'GET /docs/json',
    reason: 'the OpenAPI document itself: hidden from its own paths (schema.hide) and it takes no input',
  },
] as const;

/**
 * Operations of the document that an app server does not answer, by tag, each with its reason:
 * the fuzzer drives one app server in process.
 */
export const EXCLUDED_TAGS = [
  {
    tag: 'cluster',
    reason:
      "the supervisor's control API, answered at the balancer's address, not by an app server (test/api/openapi.test.ts checks its real answers against the document)",
  },
] as const;

/** Every path and method of the document that an app server answers, with what a request to it may carry. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const shared = (Array.isArray(item.parameters) ? item.parameters : []) as OpenApiParameter[];
    for (const [method, raw] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const op = raw as OpenApiOperation;
      if (op.tags?.some((tag) => EXCLUDED_TAGS.some((excluded) => excluded.tag === tag))) continue;
      // A shared parameter (the Idempotency-Key) is a $ref to components.parameters.
      const parameters = [...shared, ...(op.parameters ?? [])].map((p) => {
        const ref = (p as { $ref?: string }).$ref;
        return ref ? (doc.components?.parameters?.[ref.replace('#/components/parameters/', '')] ?? p) : p;
      });
      const json = op.requestBody?.content?.['application/json']?.schema;
      const headerParams = parameters
        .filter((p) => p.in === 'header')
        .map((p) => ({ name: p.name.toLowerCase(), schema: p.schema ?? {}, required: p.required === true }));
      operations.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === 'path').map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        headerParams,
        body: json ? { schema: json, required: op.requestBody?.required === true } : undefined,
        idempotent: headerParams.some((h) => h.name === 'idempotency-key'),
        documented: Object.keys(op.responses ?? {})
          .map(Number)
          .filter((s) => Number.isInteger(s)),
      });
    }
  }
  return operations;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema -> arbitraries
// ---------------------------------------------------------------------------------------------

/**
 * A value known to the running system (a menu item id, another user's name, a live session id...),
 * picked when the case runs: the pools change as the run goes on, the case stays replayable.
 */
export class Hint {
  constructor(
    readonly name: string,
    readonly pick: number,
  ) {}

  [fc.toStringMethod](): string {
    return `hint(${this.name}#${this.pick})`;
  }
}

export interface SchemaContext {
  /** Resolves `#/components/schemas/...`. */
  resolve(schema: JsonSchema): JsonSchema;
  /** The names that have a pool of known values (`<path>#<name>` or `<name>`). */
  hintFor(name: string | undefined): string | undefined;
}

/** Code points, as ajv counts string lengths. */
const lengthOf = (s: string) => [...s].length;

function typesOf(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  if (schema.type) return [schema.type];
  if (schema.properties || schema.required) return ['object'];
  return [];
}

function stringArbitrary(schema: JsonSchema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = Math.min(schema.maxLength ?? 40, Math.max(min, 40));
  const fits = (s: string) => lengthOf(s) >= min && lengthOf(s) <= (schema.maxLength ?? Infinity);
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
  if (schema.pattern) {
    const regex = new RegExp(schema.pattern);
    return fc.stringMatching(regex, { size: 'small' }).filter(fits);
  }
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ minLength: min, maxLength: max }) },
      { weight: 1, arbitrary: fc.string({ minLength: min, maxLength: max, unit: 'grapheme' }) },
      { weight: 1, arbitrary: fc.string({ minLength: min, maxLength: max, unit: 'binary' }) },
    )
    .filter(fits);
}

function integerArbitrary(schema: JsonSchema): fc.Arbitrary<number> {
  let min = schema.minimum ?? -1_000_000_000;
  let max = schema.maximum ?? 1_000_000_000;
  if (typeof schema.exclusiveMinimum === 'number') min = schema.exclusiveMinimum + 1;
  else if (schema.exclusiveMinimum === true) min += 1;
  if (typeof schema.exclusiveMaximum === 'number') max = schema.exclusiveMaximum - 1;
  else if (schema.exclusiveMaximum === true) max -= 1;
  // The bounds and small values are where the bugs live.
  return fc.oneof(
    fc.constantFrom(min, max),
    fc.integer({ min, max: Math.min(max, min + 100) }),
    fc.integer({ min, max }),
  );
}

/** Values that match `schema`: object/properties/required/additionalProperties, strings, numbers, arrays, unions, enums. */
export function validValue(schema: JsonSchema, ctx: SchemaContext, name?: string, depth = 0): fc.Arbitrary<unknown> {
  schema = ctx.resolve(schema);
  const base = validBase(schema, ctx, name, depth);
  return schema.nullable ? fc.oneof({ weight: 4, arbitrary: base }, { weight: 1, arbitrary: fc.constant(null) }) : base;
}

function validBase(
  schema: JsonSchema,
  ctx: SchemaContext,
  name: string | undefined,
  depth: number,
): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf || schema.oneOf)
    return fc.oneof(...(schema.anyOf ?? schema.oneOf)!.map((s) => validValue(s, ctx, name, depth)));
  // allOf: the object members merged (the only use TypeBox makes of it: Intersect of objects).
  if (schema.allOf) return validValue(mergeAll(schema.allOf.map((s) => ctx.resolve(s))), ctx, name, depth);
  const types = typesOf(schema);
  if (types.length > 1) return fc.oneof(...types.map((type) => validValue({ ...schema, type }, ctx, name, depth)));
  switch (types[0]) {
    case 'string': {
      const hint = ctx.hintFor(name);
      const generated = stringArbitrary(schema);
      if (!hint) return generated;
      // Known values reach past "not found" into the route's real work; generated ones test the edges.
      return fc.oneof(
        { weight: 3, arbitrary: fc.nat(1000).map((pick) => new Hint(hint, pick)) },
        { weight: 2, arbitrary: generated },
      );
    }
    case 'integer':
      return integerArbitrary(schema);
    case 'number':
      return fc.double({
        min: schema.minimum ?? -1e9,
        max: schema.maximum ?? 1e9,
        noNaN: true,
        noDefaultInfinity: true,
      });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const items = schema.items ? validValue(schema.items, ctx, name, depth + 1) : fc.jsonValue({ maxDepth: 1 });
      return fc.array(items, {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 4, Math.max(schema.minItems ?? 0, 4)),
      });
    }
    case 'object': {
      const properties = schema.properties ?? {};
      const required = schema.required ?? [];
      const shape: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, sub] of Object.entries(properties)) shape[key] = validValue(sub, ctx, key, depth + 1);
      const record = fc.record(shape, { requiredKeys: required.filter((k) => k in properties) });
      if (schema.additionalProperties === false || depth > 3) return record;
      // Extra members are allowed here: add some.
      const extra =
        typeof schema.additionalProperties === 'object'
          ? validValue(schema.additionalProperties, ctx)
          : fc.jsonValue({ maxDepth: 1 });
      return fc
        .tuple(
          record,
          fc.dictionary(
            fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !(k in properties)),
            extra,
            { maxKeys: 2 },
          ),
        )
        .map(([r, more]) => ({ ...more, ...r }));
    }
    default:
      // No type: any JSON.
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function mergeAll(schemas: JsonSchema[]): JsonSchema {
  const merged: JsonSchema = { type: 'object', properties: {}, required: [] };
  for (const s of schemas) {
    Object.assign(merged.properties!, s.properties ?? {});
    merged.required!.push(...(s.required ?? []));
    if (s.additionalProperties === false) merged.additionalProperties = false;
  }
  return merged;
}

/** Does `value` have (one of) the JSON types of `schema`? Used to keep "wrong type" values wrong. */
function hasType(value: unknown, schema: JsonSchema): boolean {
  const types = typesOf(schema);
  if (types.length === 0) return true;
  const actual =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'array'
        : typeof value === 'number'
          ? Number.isInteger(value)
            ? 'integer'
            : 'number'
          : typeof value;
  return types.some((t) => t === actual || (t === 'number' && actual === 'integer'));
}

const anyJson = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

/** Values that break one rule of a scalar schema: bounds, lengths, patterns, integer-ness, strings for numbers. */
function ruleBreakers(schema: JsonSchema, ctx: SchemaContext): fc.Arbitrary<unknown> {
  schema = ctx.resolve(schema);
  const out: unknown[] = [];
  const types = typesOf(schema);
  if (types.includes('integer') || types.includes('number')) {
    if (schema.minimum !== undefined) out.push(schema.minimum - 1, schema.minimum - 0.5);
    if (schema.maximum !== undefined) out.push(schema.maximum + 1, schema.maximum * 10);
    out.push(1.5, -1, 0, 1e21, -1e21, 2 ** 53 + 2, '1', '', true, [1], { n: 1 });
  }
  if (types.includes('string')) {
    if ((schema.minLength ?? 0) > 0) out.push('');
    if (schema.maxLength !== undefined) out.push('x'.repeat(schema.maxLength + 1), 'é'.repeat(schema.maxLength + 1));
    if (schema.pattern) out.push('UPPER', 'with space', '../..', 'ü', 'a\u0000b', '%2e%2e', 'a/b', '😀😀😀');
    // NUL and a lone surrogate: PostgreSQL takes neither in text.
    out.push(1, true, null, ['a'], { s: 'a' }, 'a\u0000b', '\u0000', '\ud800');
  }
  if (schema.enum || 'const' in schema) out.push('not-a-member', 12345);
  if (types.includes('boolean')) out.push('true', 1, 0, null);
  if (types.includes('array')) out.push('[]', {}, [[[[]]]]);
  if (out.length === 0) out.push(null);
  return fc.constantFrom(...out);
}

/** A body as the client sends it: a JSON value (serialised when the case runs), or text. */
export type BodySpec =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown; valid: boolean; note: string }
  | { kind: 'text'; build: TextBuild; note: string };

type TextBuild =
  | { how: 'raw'; text: string }
  | { how: 'truncated'; value: unknown; at: number }
  | { how: 'deep'; depth: number; open: string; close: string }
  | { how: 'prototype'; value: unknown }
  | { how: 'duplicate-key'; value: unknown; key: string; second: unknown }
  | { how: 'huge'; value: unknown; key: string; size: number };

/** Bodies that break the schema in one way each: types, members, ranges, nesting, size, syntax. */
export function invalidBody(schema: JsonSchema, ctx: SchemaContext): fc.Arbitrary<BodySpec> {
  schema = ctx.resolve(schema);
  const valid = validValue(schema, ctx);
  const properties = Object.entries(schema.properties ?? {});
  const required = (schema.required ?? []).filter((k) => schema.properties?.[k]);
  const json = (note: string) => (value: unknown) => ({ kind: 'json' as const, value, valid: false, note });
  const text = (note: string) => (build: TextBuild) => ({ kind: 'text' as const, build, note });
  const variants: Array<fc.Arbitrary<BodySpec>> = [
    anyJson.filter((v) => !hasType(v, schema)).map(json('wrong-type')),
    fc.constant(null).map(json('null')),
    valid.map((v) => [v]).map(json('array')),
    fc
      .constantFrom<TextBuild>(
        { how: 'raw', text: '' },
        { how: 'raw', text: 'undefined' },
        { how: 'raw', text: 'NaN' },
        { how: 'raw', text: "{'a': 1}" },
        { how: 'raw', text: '{"a": 1,}' },
        { how: 'raw', text: '<xml/>' },
        { how: 'raw', text: 'a=1&b=2' },
        { how: 'raw', text: '\u0000' },
        { how: 'raw', text: '\ufeff{}' },
      )
      .map(text('non-json')),
    fc
      .string({ maxLength: 60, unit: 'binary' })
      .map((t) => ({ how: 'raw' as const, text: t }))
      .map(text('random-text')),
    fc
      .tuple(valid, fc.nat())
      .map(([value, at]) => ({ how: 'truncated' as const, value, at }))
      .map(text('truncated')),
    fc
      .record({ depth: fc.integer({ min: 50, max: 20_000 }), brace: fc.boolean() })
      .map(({ depth, brace }) => ({
        how: 'deep' as const,
        depth,
        open: brace ? '{"a":' : '[',
        close: brace ? '}' : ']',
      }))
      .map(text('deep-nesting')),
    valid.map((value) => ({ how: 'prototype' as const, value })).map(text('prototype-keys')),
    // Around the 64 KiB limit: under it (a 400 for the long member, or accepted), over it (413).
    fc
      .record({
        value: valid,
        size: fc.oneof(fc.integer({ min: 60_000, max: 72_000 }), fc.integer({ min: 65_400, max: 65_700 })),
      })
      .map(({ value, size }) => ({ how: 'huge' as const, value, key: properties[0]?.[0] ?? 'blob', size }))
      .map(text('huge')),
  ];
  if (required.length > 0) {
    variants.push(
      fc
        .tuple(valid, fc.constantFrom(...required))
        .map(([v, key]) => {
          const copy = { ...(v as Record<string, unknown>) };
          delete copy[key];
          return copy;
        })
        .map(json('missing-required')),
    );
  }
  if (typesOf(schema).includes('object')) {
    variants.push(
      fc
        .tuple(valid, fc.constantFrom('admin', 'extra', 'role', 'userId', 'balanceCents', '', ' '), anyJson)
        .filter(([, key]) => !(key in (schema.properties ?? {})))
        .map(([v, key, extra]) => ({ ...(v as object), [key]: extra }))
        .map(json(schema.additionalProperties === false ? 'extra-member' : 'extra-member-allowed')),
    );
  }
  if (properties.length > 0) {
    const [firstKey, firstSchema] = properties[0]!;
    variants.push(
      fc
        .tuple(valid, fc.constantFrom(...properties))
        .chain(([v, [key, sub]]) => ruleBreakers(sub, ctx).map((bad) => ({ ...(v as object), [key]: bad })))
        .map(json('member-breaks-rule')),
      fc
        .tuple(valid, fc.constantFrom(...properties), anyJson)
        .filter(([, [, sub], bad]) => !hasType(bad, ctx.resolve(sub)))
        .map(([v, [key], bad]) => ({ ...(v as object), [key]: bad }))
        .map(json('member-wrong-type')),
      fc
        .tuple(valid, ruleBreakers(firstSchema, ctx))
        .map(([v, bad]) => ({ how: 'duplicate-key' as const, value: v, key: firstKey, second: bad }))
        .map(text('duplicate-key')),
    );
  }
  return fc.oneof(...variants);
}

function serialise(value: unknown, resolveHint: (hint: Hint) => string): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Hint ? resolveHint(v) : v)) ?? 'null';
}

function buildText(build: TextBuild, resolveHint: (hint: Hint) => string): string {
  switch (build.how) {
    case 'raw':
      return build.text;
    case 'truncated': {
      const full = serialise(build.value, resolveHint);
      return full.slice(0, build.at % Math.max(1, full.length));
    }
    case 'deep':
      return build.open.repeat(build.depth) + '1' + build.close.repeat(build.depth);
    case 'prototype': {
      const inner = serialise(build.value, resolveHint);
      const pollute = '"__proto__":{"isAdmin":true,"userId":"x"},"constructor":{"prototype":{"polluted":1}}';
      return inner.startsWith('{') ? `{${pollute}${inner.length > 2 ? ',' : ''}${inner.slice(1)}` : `{${pollute}}`;
    }
    case 'duplicate-key': {
      const inner = serialise(build.value, resolveHint);
      const dup = `${JSON.stringify(build.key)}:${serialise(build.second, resolveHint)}`;
      return inner.startsWith('{') ? `${inner.slice(0, -1)}${inner.length > 2 ? ',' : ''}${dup}}` : `{${dup}}`;
    }
    case 'huge': {
      const base = build.value && typeof build.value === 'object' && !Array.isArray(build.value) ? build.value : {};
      return serialise({ ...base, [build.key]: 'x'.repeat(build.size) }, resolveHint);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

export type AuthSpec =
  | 'none'
  | 'cookie'
  | 'bearer'
  | 'cookie+bearer'
  | 'bogus-bearer'
  | 'bogus-cookie'
  | 'cookie+bogus-bearer'
  | 'lowercase-bearer';

export type KeySpec =
  | { kind: 'absent' }
  | { kind: 'fresh'; key: string }
  | { kind: 'reused'; key: string }
  | { kind: 'bad'; key: string; why: string };

/** One generated request, before the values that depend on the running system are filled in. */
export interface CaseSpec {
  route: string;
  /** Which part of the request this case gets wrong (FOCUSES). */
  focus: Focus;
  method: string;
  /** Per path parameter: a valid value (maybe a Hint), or a raw URL fragment that is not. */
  params: Record<string, { valid: true; value: unknown } | { valid: false; raw: string; why: string }>;
  /** Another spelling of the path (trailing slash, case, dot segments...), or none. */
  pathMutation: string | undefined;
  query: string;
  auth: AuthSpec;
  bogus: string;
  headers: Array<[string, string]>;
  /** undefined: application/json when there is a body; null: no content-type header. */
  contentType: string | null | undefined;
  /** Added to the real content-length (0: the right one). */
  contentLengthDelta: number;
  key: KeySpec;
  body: BodySpec;
}

const headerValueChars = fc.string({
  maxLength: 40,
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)) },
    { weight: 1, arbitrary: fc.constant('\t') },
  ),
});

/** Headers a client may send: nonsense and the ones that steer this app (proxy headers, CSRF, caching). */
const junkHeader: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), headerValueChars),
  fc.tuple(
    fc.constant('x-forwarded-for'),
    fc.constantFrom('10.0.0.7', 'garbage', '::zz', '1.2.3.4, 5.6.7.8', '', '999.999.999.999', '[::1]:80'),
  ),
  fc.tuple(fc.constant('x-forwarded-proto'), fc.constantFrom('https', 'http', 'gopher', '')),
  fc.tuple(fc.constant('x-forwarded-host'), fc.constantFrom('evil.example', 'localhost:80', 'éé', '')),
  fc.tuple(
    fc.constant('origin'),
    fc.constantFrom('http://localhost:80', 'http://evil.example', 'null', 'not a url', 'http://évil', ''),
  ),
  fc.tuple(fc.constant('sec-fetch-site'), fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none', 'junk')),
  fc.tuple(fc.constant('accept'), fc.constantFrom('*/*', 'text/html', 'application/xml', '', ';;;')),
  fc.tuple(fc.constant('if-none-match'), fc.constantFrom('*', '"abc"', 'W/"x"', '"', '')),
  fc.tuple(fc.constant('x-request-id'), fc.oneof(headerValueChars, fc.constant('r'.repeat(300)))),
  fc.tuple(fc.constant('accept-encoding'), fc.constantFrom('gzip', 'br', 'identity;q=0', '*')),
  fc.tuple(fc.constant('content-encoding'), fc.constantFrom('gzip', 'deflate', 'identity', 'br', 'junk')),
  fc.tuple(fc.constant('user-agent'), fc.constantFrom('', 'curl/8', 'Mozilla/5.0 (fuzz)')),
  fc.tuple(fc.constant('host'), fc.constantFrom('localhost:80', 'evil.example', '', 'a'.repeat(300))),
  fc.tuple(fc.constant('expect'), fc.constant('100-continue')),
);

/** Content types other than the default application/json: variants Fastify accepts, and ones it must refuse. */
const otherContentTypes = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<string | null>(
      null,
      '',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=utf-16',
      'application/json;;',
      'text/plain',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'application/vnd.api+json',
      'application/*',
      ';;;',
    ),
  },
  { weight: 1, arbitrary: headerValueChars },
);

const queryStrings = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom('__proto__', 'constructor', 'a[b]', 'a[]', 'userId', 'amountCents', '', '%zz', '%00', 'é'),
            fc.string({ maxLength: 8 }).map(encodeURIComponent),
          ),
          fc.oneof(fc.string({ maxLength: 12 }).map(encodeURIComponent), fc.constantFrom('%', '%zz', '1', '')),
        ),
        { minLength: 1, maxLength: 5 },
      )
      .map((pairs) => '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&')),
  },
  { weight: 1, arbitrary: fc.constantFrom('?', '??', '?&&', '?a', `?${'q'.repeat(5000)}=1`, '?a=1&a=2&a=3') },
);

/** Invalid path parameters: each a raw URL fragment and why it is not valid. */
function badParams(schema: JsonSchema): fc.Arbitrary<{ raw: string; why: string }> {
  const max = schema.maxLength ?? 64;
  return fc.oneof(
    fc.constantFrom(
      { raw: '', why: 'empty' },
      { raw: '..', why: 'dot-dot' },
      { raw: '.', why: 'dot' },
      { raw: '%2e%2e', why: 'encoded dot-dot' },
      { raw: '..%2f..%2fpackage.json', why: 'encoded traversal' },
      { raw: '%2F', why: 'encoded slash' },
      { raw: '%00', why: 'NUL' },
      { raw: '%20', why: 'space' },
      { raw: '%3F', why: 'encoded ?' },
      { raw: '%23', why: 'encoded #' },
      { raw: 'UPPER', why: 'outside the pattern' },
      { raw: '%zz', why: 'malformed percent-encoding' },
      { raw: '%', why: 'lone percent' },
      { raw: '%E0%A4%A', why: 'truncated UTF-8 escape' },
      { raw: '%C0%AF', why: 'overlong UTF-8' },
      { raw: 'ü€😀', why: 'raw unicode' },
      { raw: encodeURIComponent('ü€😀'), why: 'encoded unicode' },
    ),
    fc
      .integer({ min: max + 1, max: Math.max(max + 1, 300) })
      .map((n) => ({ raw: 'a'.repeat(n), why: `${n} characters (max ${max})` })),
    fc
      .string({ minLength: 1, maxLength: 12, unit: 'grapheme' })
      .map((s) => ({ raw: encodeURIComponent(s), why: 'random' })),
  );
}

const pathMutationNames = fc.constantFrom(
  'trailing-slash',
  'double-slash',
  'upper-case',
  'dot-segment',
  'encoded-char',
  'nul',
  'semicolon',
  'bad-percent',
);

const goodAuth = fc.constantFrom<AuthSpec>('cookie', 'cookie', 'bearer', 'bearer', 'cookie+bearer', 'none');
const badAuth = fc.constantFrom<AuthSpec>(
  'bogus-bearer',
  'bogus-cookie',
  'cookie+bogus-bearer',
  'lowercase-bearer',
  'none',
);

const bogusCredentials = fc.oneof(
  fc.constantFrom('x', '', 'eyJhbGciOiJub25lIn0.e30.', 'a.b.c', 'Bearer', 'null', '%00', 'ü'),
  fc.string({ maxLength: 30, unit: 'grapheme-ascii' }),
);

function idempotencyKeys(op: Operation): { good: fc.Arbitrary<KeySpec>; bad: fc.Arbitrary<KeySpec> } {
  const fresh = fc.uuid().map((key): KeySpec => ({ kind: 'fresh', key }));
  // A few keys used again and again: replays of the stored answer, or 422 for another body.
  const reused = fc
    .constantFrom('fuzz-key-1', 'fuzz-key-2', 'fuzz-key-3')
    .map((key): KeySpec => ({ kind: 'reused', key }));
  const bad = fc.constantFrom<KeySpec>(
    { kind: 'absent' },
    { kind: 'bad', key: '', why: 'empty' },
    { kind: 'bad', key: 'k'.repeat(256), why: '256 characters' },
    { kind: 'bad', key: 'with space', why: 'space' },
    { kind: 'bad', key: 'ü-key', why: 'not ASCII' },
    { kind: 'bad', key: 'tab\there', why: 'tab' },
  );
  const absent = fc.constant<KeySpec>({ kind: 'absent' });
  if (!op.idempotent) return { good: absent, bad: fc.oneof(fresh, bad) };
  return { good: fc.oneof({ weight: 4, arbitrary: fresh }, { weight: 1, arbitrary: reused }), bad };
}

/**
 * What a case gets wrong: nothing (a request the route should take, so the run reaches its real
 * work), one part of the request (so a refusal says which rule it enforces), or everything at once.
 */
export const FOCUSES = [
  'none',
  'body',
  'params',
  'path',
  'method',
  'query',
  'headers',
  'content-type',
  'framing',
  'auth',
  'key',
  'chaos',
] as const;
export type Focus = (typeof FOCUSES)[number];

/** The arbitrary of every request to one operation. */
export function caseArbitrary(op: Operation, ctx: SchemaContext): fc.Arbitrary<CaseSpec> {
  const goodParams: Record<string, fc.Arbitrary<CaseSpec['params'][string]>> = {};
  const anyParams: Record<string, fc.Arbitrary<CaseSpec['params'][string]>> = {};
  for (const p of op.pathParams) {
    const hint = ctx.hintFor(`${op.path}#${p.name}`) ?? ctx.hintFor(p.name);
    const pctx: SchemaContext = { ...ctx, hintFor: (n) => (n === p.name ? hint : undefined) };
    goodParams[p.name] = validValue(p.schema, pctx, p.name).map((value) => ({ valid: true as const, value }));
    anyParams[p.name] = fc.oneof(
      { weight: 1, arbitrary: goodParams[p.name]! },
      { weight: 3, arbitrary: badParams(p.schema).map((b) => ({ valid: false as const, ...b })) },
    );
  }
  const bodyCtx: SchemaContext = { ...ctx, hintFor: (n) => ctx.hintFor(n && `${op.path}#${n}`) ?? ctx.hintFor(n) };
  const goodBody: fc.Arbitrary<BodySpec> = op.body
    ? validValue(op.body.schema, bodyCtx).map((value) => ({ kind: 'json' as const, value, valid: true, note: 'valid' }))
    : fc.constant({ kind: 'none' as const });
  const badBody: fc.Arbitrary<BodySpec> = op.body
    ? fc.oneof(
        { weight: 12, arbitrary: invalidBody(op.body.schema, bodyCtx) },
        { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
      )
    : invalidBody({ type: 'object', properties: {}, additionalProperties: false }, bodyCtx);
  const otherMethods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'].filter((m) => m !== op.method);
  const keys = idempotencyKeys(op);

  const dims = {
    method: { good: fc.constant(op.method), bad: fc.constantFrom(...otherMethods) },
    params: { good: fc.record(goodParams), bad: fc.record(anyParams) },
    pathMutation: { good: fc.constant<string | undefined>(undefined), bad: pathMutationNames },
    // Routes declare no query parameters: any query is ignored, so junk keys belong to good requests too.
    query: {
      good: fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: queryStrings }),
      bad: queryStrings,
    },
    headers: {
      good: fc.constant<Array<[string, string]>>([]),
      bad: fc.array(junkHeader, { minLength: 1, maxLength: 4 }),
    },
    contentType: { good: fc.constant<string | null | undefined>(undefined), bad: otherContentTypes },
    contentLengthDelta: { good: fc.constant(0), bad: fc.constantFrom(-3, -1, 1, 1000) },
    auth: { good: goodAuth, bad: badAuth },
    key: keys,
    body: { good: goodBody, bad: badBody },
  };
  type Dim = keyof typeof dims;
  const focusDims: Record<Focus, Dim[]> = {
    none: [],
    body: ['body'],
    params: ['params'],
    path: ['pathMutation'],
    method: ['method'],
    query: ['query'],
    headers: ['headers'],
    'content-type': ['contentType'],
    framing: ['contentLengthDelta'],
    auth: ['auth'],
    key: ['key'],
    chaos: [],
  };
  const weights: Record<Focus, number> = {
    none: 6,
    body: op.body ? 6 : 2,
    params: op.pathParams.length > 0 ? 3 : 0,
    path: 1,
    method: 1,
    query: 1,
    headers: 2,
    'content-type': 2,
    framing: 1,
    auth: 2,
    key: op.idempotent ? 3 : 1,
    chaos: 2,
  };
  const pick = (focus: Focus, dim: Dim): fc.Arbitrary<unknown> => {
    const { good, bad } = dims[dim] as { good: fc.Arbitrary<unknown>; bad: fc.Arbitrary<unknown> };
    if (focus === 'chaos') return fc.oneof(good, bad);
    return focusDims[focus].includes(dim) ? bad : good;
  };
  const focus = fc.oneof(
    ...FOCUSES.filter((f) => weights[f] > 0).map((f) => ({ weight: weights[f], arbitrary: fc.constant(f) })),
  );
  return focus.chain(
    (f) =>
      fc.record({
        route: fc.constant(op.key),
        focus: fc.constant(f),
        method: pick(f, 'method'),
        params: pick(f, 'params'),
        pathMutation: pick(f, 'pathMutation'),
        query: pick(f, 'query'),
        auth: pick(f, 'auth'),
        bogus: bogusCredentials,
        headers: pick(f, 'headers'),
        contentType: pick(f, 'contentType'),
        contentLengthDelta: pick(f, 'contentLengthDelta'),
        key: pick(f, 'key'),
        body: pick(f, 'body'),
      }) as fc.Arbitrary<CaseSpec>,
  );
}

function mutatePath(path: string, how: string | undefined): string {
  switch (how) {
    case undefined:
      return path;
    case 'trailing-slash':
      return `${path}/`;
    case 'double-slash':
      return `/${path}`;
    case 'upper-case':
      return path.toUpperCase();
    case 'dot-segment':
      return `${path}/../${path.split('/').pop() ?? ''}`;
    case 'encoded-char':
      return path.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
    case 'nul':
      return `${path}%00`;
    case 'semicolon':
      return `${path};jsessionid=x`;
    case 'bad-percent':
      return `${path}%zz`;
    default:
      return path;
  }
}

// ---------------------------------------------------------------------------------------------
// Running cases
// ---------------------------------------------------------------------------------------------

/** The request actually sent (what a report shows). */
export interface SentRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

export interface Violation {
  kind: string;
  message: string;
  /** Set when the violation is a known, already reported bug (KNOWN_BUGS). */
  known?: string;
}

export interface CaseResult {
  spec: CaseSpec;
  request: SentRequest;
  status: number;
  code: string | undefined;
  /** The start of the answer's body, for reports. */
  body: string;
  violations: Violation[];
}

/**
 * Bugs found by this fuzzer and reported, not yet fixed in src: a response matching one of these
 * is listed as known, not failed, so the run keeps finding others. Remove an entry when it is fixed.
 */
export interface KnownBug {
  id: string;
  description: string;
  matches(status: number, body: string, request: SentRequest): boolean;
}

/** None open: each bug this fuzzer found was fixed and keeps a test in openapi.test.ts. */
export const KNOWN_BUGS: readonly KnownBug[] = [];

interface Snapshot {
  counts: Record<string, string>;
  cart: string;
  balance: string;
}

/** Row counts (and the total stock) a refused request must leave alone. */
const SNAPSHOT_SQL = `SELECT
  (SELECT count(*) FROM users) AS users,
  (SELECT count(*) FROM accounts) AS accounts,
  (SELECT count(*) FROM ledger) AS ledger,
  (SELECT count(*) FROM orders) AS orders,
  (SELECT count(*) FROM checkout_sagas) AS checkout_sagas,
  (SELECT count(*) FROM idempotency_keys) AS idempotency_keys,
  (SELECT count(*) FROM refresh_tokens) AS refresh_tokens,
  (SELECT coalesce(sum(stock), 0) FROM menu_items) AS menu_stock`;

/** The settings that keep the fuzzer from rate-limiting itself (it signs in and guesses ids all run long). */
export const FUZZ_ENV: Record<string, string> = {
  SW_LOGIN_LIMIT: '1000000',
  SW_LOGIN_IP_LIMIT: '1000000',
  SW_UNKNOWN_SESSION_IP_LIMIT: '1000000',
};

export const PASSWORD = 'correct horse battery';
const USER_AGENT = 'statewise-fuzz/1.0';
const BODY_LIMIT = 65_536;
const SAFE = new Set(['GET', 'HEAD']);
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface Tally {
  cases: number;
  perRoute: Map<string, { cases: number; statuses: Map<number, number> }>;
  statuses: Map<number, number>;
  perFocus: Map<string, Map<number, number>>;
  /** Statuses a route answered that its document does not list (informative, not a violation). */
  undocumented: Map<string, Set<number>>;
  violations: CaseResult[];
}

export const newTally = (): Tally => ({
  cases: 0,
  perRoute: new Map(),
  statuses: new Map(),
  perFocus: new Map(),
  undocumented: new Map(),
  violations: [],
});

/**
 * The fuzzer of one app server: reads its document, keeps one signed-in user (cookie and bearer
 * token, renewed when a case ends them), and runs cases with every invariant checked.
 */
export class Fuzzer {
  readonly operations: Operation[];
  readonly tally = newTally();
  /** Pools of known values, by `<path>#<name>` or `<name>`. */
  readonly hints = new Map<string, string[]>();
  readonly schemaContext: SchemaContext;
  #cookie = '';
  #token = '';
  readonly #username: string;

  private constructor(
    readonly server: TestServer,
    readonly doc: OpenApiDocument,
    private readonly db: pg.Client,
    private readonly tag: string,
  ) {
    this.operations = operationsOf(doc);
    this.#username = `fz${tag}`;
    this.schemaContext = {
      resolve: (schema) => this.#resolve(schema),
      hintFor: (name) => (name !== undefined && this.hints.has(name) ? name : undefined),
    };
  }

  /** Fetches the document, creates the signed-in user and a second one, and learns the known values. */
  static async open(server: TestServer, databaseUrl: string): Promise<Fuzzer> {
    const docResponse = await server.app.inject({ method: 'GET', url: '/docs/json' });
    assert.equal(docResponse.statusCode, 200, 'GET /docs/json');
    const db = new pg.Client(databaseUrl);
    await db.connect();
    const tag = `${process.pid % 10000}_${Date.now() % 100000}`;
    const fuzzer = new Fuzzer(server, docResponse.json() as OpenApiDocument, db, tag);
    await fuzzer.#setUp();
    return fuzzer;
  }

  async close(): Promise<void> {
    await this.db.end();
  }

  arbitraryFor(op: Operation): fc.Arbitrary<CaseSpec> {
    return caseArbitrary(op, this.schemaContext);
  }

  operation(key: string): Operation {
    const op = this.operations.find((o) => o.key === key);
    if (!op) throw new Error(`no operation ${key}`);
    return op;
  }

  #resolve(schema: JsonSchema): JsonSchema {
    let s = schema;
    for (let i = 0; s.$ref && i < 10; i++) {
      const name = s.$ref.replace('#/components/schemas/', '');
      s = this.doc.components?.schemas?.[name] ?? {};
    }
    return s;
  }

  async #inject(method: string, url: string, headers: Record<string, string> = {}, payload?: string) {
    return this.server.app.inject({
      method: method as 'GET',
      url,
      headers: { 'user-agent': USER_AGENT, ...headers },
      ...(payload === undefined ? {} : { payload }),
    });
  }

  async #json(method: string, url: string, body: unknown, headers: Record<string, string> = {}) {
    return this.#inject(method, url, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));
  }

  static #sessionCookie(response: { cookies: Array<{ name: string; value: string }> }): string | undefined {
    const c = response.cookies.find((x) => (x.name === 'sid' || x.name === '__Host-sid') && x.value !== '');
    return c ? `${c.name}=${c.value}` : undefined;
  }

  async #setUp(): Promise<void> {
    const other = `fo${this.tag}`;
    const registered = await this.#json('POST', '/api/auth/register', { username: this.#username, password: PASSWORD });
    assert.equal(registered.statusCode, 201, registered.body);
    this.#cookie = Fuzzer.#sessionCookie(registered) ?? '';
    const second = await this.#json('POST', '/api/auth/register', { username: other, password: PASSWORD });
    assert.equal(second.statusCode, 201, second.body);
    await this.#renewToken();
    // A second session of the same user, for DELETE /api/auth/sessions/{id}.
    await this.#json('POST', '/api/auth/login', { username: this.#username, password: PASSWORD });

    const menu = (await this.#inject('GET', '/api/menu')).json() as { items: Array<{ id: string }> };
    const page = await this.#inject('GET', '/');
    const assets = [...page.body.matchAll(/\/assets\/([^"'?#\s)]+)/g)].map((m) => m[1]!);
    this.hints.set(
      'itemId',
      menu.items.map((i) => i.id),
    );
    this.hints.set('file', [...new Set(assets)]);
    this.hints.set('username', [this.#username, other]);
    this.hints.set('toUsername', [other, this.#username, 'nobody-here']);
    this.hints.set('password', [PASSWORD]);
    this.hints.set('refreshToken', []);
    this.hints.set('/api/orders/{id}#id', []);
    this.hints.set('/api/auth/sessions/{id}#id', []);
    await this.#issueRefreshToken();
    await this.#refreshSessionIds();

    // Money and one real order, so that withdrawals, transfers and GET /api/orders/{id} have something to find.
    const auth = { authorization: `Bearer ${this.#token}` };
    const deposit = await this.#json(
      'POST',
      '/api/bank/deposit',
      { amountCents: 100_000 },
      { ...auth, 'idempotency-key': `setup-${this.tag}` },
    );
    assert.equal(deposit.statusCode, 200, deposit.body);
    const add = await this.#json('POST', '/api/cart/items', { itemId: menu.items[0]!.id, qty: 1 }, auth);
    assert.equal(add.statusCode, 200, add.body);
    const order = await this.#json(
      'POST',
      '/api/orders',
      {},
      { ...auth, 'idempotency-key': `setup-order-${this.tag}` },
    );
    assert.equal(order.statusCode, 202, order.body);
    this.hints.get('/api/orders/{id}#id')!.push((order.json() as { order: { id: string } }).order.id);
    await this.#settle();
  }

  async #renewToken(): Promise<void> {
    const r = await this.#json('POST', '/api/auth/token', { username: this.#username, password: PASSWORD });
    assert.equal(r.statusCode, 200, `token for the fuzz user: ${r.body}`);
    this.#token = (r.json() as { accessToken: string }).accessToken;
  }

  async #issueRefreshToken(): Promise<void> {
    const r = await this.#json('POST', '/api/auth/token', { username: this.#username, password: PASSWORD });
    if (r.statusCode === 200) this.hints.get('refreshToken')!.push((r.json() as { refreshToken: string }).refreshToken);
  }

  async #refreshSessionIds(): Promise<void> {
    const r = await this.#inject('GET', '/api/auth/sessions', { authorization: `Bearer ${this.#token}` });
    if (r.statusCode !== 200) return;
    const ids = (r.json() as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id);
    this.hints.set('/api/auth/sessions/{id}#id', ids);
  }

  /** The cookie session and the bearer token still work, or are made again (a case may have ended them). */
  async #ensureCredentials(): Promise<void> {
    const byToken = await this.#inject('GET', '/api/me', { authorization: `Bearer ${this.#token}` });
    if (byToken.statusCode !== 200) await this.#renewToken();
    const byCookie = await this.#inject('GET', '/api/me', { cookie: this.#cookie });
    if (byCookie.statusCode !== 200) {
      const login = await this.#json('POST', '/api/auth/login', { username: this.#username, password: PASSWORD });
      assert.equal(login.statusCode, 200, `sign the fuzz user in again: ${login.body}`);
      this.#cookie = Fuzzer.#sessionCookie(login) ?? '';
      await this.#refreshSessionIds();
    }
  }

  /** Waits until no checkout saga is running: a saga changes the ledger, the stock and the cart. */
  async #settle(): Promise<void> {
    await waitFor(
      async () => {
        const { rows } = await this.db.query<{ busy: string }>(
          `SELECT (SELECT count(*) FROM checkout_sagas WHERE state NOT IN ('confirmed', 'cancelled'))
                + (SELECT count(*) FROM pgboss.job WHERE name = 'checkout' AND state IN ('created', 'retry', 'active')) AS busy`,
        );
        return rows[0]!.busy === '0';
      },
      { timeoutMs: 20_000, intervalMs: 10, what: 'checkout sagas to finish' },
    );
  }

  async #snapshot(): Promise<Snapshot> {
    const { rows } = await this.db.query<Record<string, string>>(SNAPSHOT_SQL);
    const auth = { authorization: `Bearer ${this.#token}` };
    const [cart, account] = await Promise.all([
      this.#inject('GET', '/api/cart', auth),
      this.#inject('GET', '/api/bank/account', auth),
    ]);
    return {
      counts: rows[0]!,
      cart: `${cart.statusCode} ${cart.body}`,
      balance: `${account.statusCode} ${account.body}`,
    };
  }

  #resolveHint = (hint: Hint): string => {
    const pool = this.hints.get(hint.name) ?? [];
    return pool.length === 0 ? `no-${hint.name.replace(/\W/g, '')}` : pool[hint.pick % pool.length]!;
  };

  /** The request a spec stands for, with the known values of this moment. */
  materialise(spec: CaseSpec): SentRequest {
    const op = this.operation(spec.route);
    let path = op.path;
    for (const p of op.pathParams) {
      const param = spec.params[p.name]!;
      const fragment = param.valid
        ? encodeURIComponent(param.value instanceof Hint ? this.#resolveHint(param.value) : String(param.value))
        : param.raw;
      path = path.replace(`{${p.name}}`, fragment);
    }
    const url = mutatePath(path, spec.pathMutation) + spec.query;

    const headers: Record<string, string> = { 'user-agent': USER_AGENT };
    const bearer = `Bearer ${this.#token}`;
    switch (spec.auth) {
      case 'cookie':
        headers.cookie = this.#cookie;
        break;
      case 'bearer':
        headers.authorization = bearer;
        break;
      case 'cookie+bearer':
        headers.cookie = this.#cookie;
        headers.authorization = bearer;
        break;
      case 'bogus-bearer':
        headers.authorization = `Bearer ${spec.bogus}`;
        break;
      case 'bogus-cookie':
        headers.cookie =
          spec.bogus.length % 2
            ? `sid=${encodeURIComponent(spec.bogus)}`
            : `__Host-sid=${spec.bogus}; sid=; x=${spec.bogus}`;
        break;
      case 'cookie+bogus-bearer':
        headers.cookie = this.#cookie;
        headers.authorization = `Bearer ${spec.bogus}`;
        break;
      case 'lowercase-bearer':
        headers.authorization = `bearer ${this.#token}`;
        break;
      case 'none':
        break;
    }
    if (spec.key.kind !== 'absent') headers['idempotency-key'] = spec.key.key;
    for (const [name, value] of spec.headers) headers[name] = value;

    let payload: string | undefined;
    if (spec.body.kind === 'json') payload = serialise(spec.body.value, this.#resolveHint);
    else if (spec.body.kind === 'text') payload = buildText(spec.body.build, this.#resolveHint);
    if (spec.contentType === null) delete headers['content-type'];
    else if (spec.contentType !== undefined) headers['content-type'] = spec.contentType;
    else if (payload !== undefined) headers['content-type'] = 'application/json';
    if (payload !== undefined && spec.contentLengthDelta !== 0) {
      headers['content-length'] = String(Math.max(0, Buffer.byteLength(payload) + spec.contentLengthDelta));
    }
    return { method: spec.method, url, headers, ...(payload === undefined ? {} : { payload }) };
  }

  /** Runs one case and checks every invariant; records it in the tally. */
  async run(spec: CaseSpec): Promise<CaseResult> {
    const op = this.operation(spec.route);
    await this.#ensureCredentials();
    const before = await this.#snapshot();
    const request = this.materialise(spec);
    const violations: Violation[] = [];

    let status = 0;
    let text = '';
    let contentType = '';
    let setCookies: string[] = [];
    try {
      const response = await this.server.app.inject({
        method: request.method as 'GET',
        url: request.url,
        headers: request.headers,
        ...(request.payload === undefined ? {} : { payload: request.payload }),
      });
      status = response.statusCode;
      text = response.body;
      contentType = String(response.headers['content-type'] ?? '');
      const sc = response.headers['set-cookie'];
      setCookies = sc === undefined ? [] : Array.isArray(sc) ? sc : [String(sc)];
    } catch (error) {
      violations.push({ kind: 'no-answer', message: `inject threw: ${(error as Error).stack ?? String(error)}` });
    }

    let code: string | undefined;
    const known = KNOWN_BUGS.find((b) => b.matches(status, text, request));
    if (status >= 500)
      violations.push({ kind: '5xx', message: `status ${status}`, ...(known ? { known: known.id } : {}) });
    if (status >= 400) {
      const shape = this.#checkErrorShape(request.method, status, contentType, text);
      code = shape.code;
      for (const message of shape.problems) {
        violations.push({ kind: 'error-shape', message, ...(known ? { known: known.id } : {}) });
      }
    }

    // 413: a JSON body over the limit, on a route that reads bodies, is never accepted.
    const size = request.payload === undefined ? 0 : Buffer.byteLength(request.payload);
    const jsonType = /^application\/json(\s*;|$)/i.test(request.headers['content-type'] ?? '');
    if (size > BODY_LIMIT && jsonType && BODY_METHODS.has(request.method) && spec.contentLengthDelta === 0) {
      if (status >= 200 && status < 300) {
        violations.push({ kind: 'body-limit', message: `a ${size}-byte body was accepted (${status})` });
      }
      const plain =
        request.method === op.method &&
        !spec.pathMutation &&
        Object.values(spec.params).every((p) => p.valid) &&
        !spec.headers.some(([name]) =>
          ['origin', 'sec-fetch-site', 'host', 'x-forwarded-host', 'content-encoding'].includes(name),
        );
      if (plain && status !== 413) {
        violations.push({ kind: 'body-limit', message: `a ${size}-byte JSON body got ${status}, not 413` });
      }
    }

    const health = await this.server.app.inject({ method: 'GET', url: '/healthz' }).catch((e: Error) => e);
    if (health instanceof Error || health.statusCode !== 200) {
      violations.push({
        kind: 'server-down',
        message: `GET /healthz after the case: ${health instanceof Error ? health.message : health.statusCode}`,
      });
    }

    // A checkout accepted (whatever spelling of the URL reached it): its saga moves money, stock and
    // the cart in the background; wait for it.
    if (status === 202) {
      try {
        const order = (JSON.parse(text) as { order: { id: string } }).order;
        const pool = this.hints.get('/api/orders/{id}#id')!;
        if (!pool.includes(order.id)) pool.push(order.id);
      } catch {
        // The shape is the response schema's business; the wait below matters more.
      }
      await this.#settle().catch((e: Error) => violations.push({ kind: 'saga-stuck', message: e.message }));
    }

    const refused = status >= 400 && status < 500;
    if (refused || (SAFE.has(request.method) && status < 400)) {
      const after = await this.#snapshot();
      const keyValid = op.idempotent && spec.key.kind !== 'absent' && spec.key.kind !== 'bad';
      for (const [table, count] of Object.entries(before.counts)) {
        // A refusal inside an (IK) operation is that key's stored answer, by design.
        if (table === 'idempotency_keys' && keyValid) continue;
        if (after.counts[table] !== count) {
          violations.push({
            kind: 'state-changed',
            message: `${table}: ${count} -> ${after.counts[table]} (${status})`,
          });
        }
      }
      if (after.cart !== before.cart) {
        violations.push({
          kind: 'state-changed',
          message: `the user's cart: ${before.cart} -> ${after.cart} (${status})`,
        });
      }
      if (after.balance !== before.balance) {
        violations.push({
          kind: 'state-changed',
          message: `the user's balance: ${before.balance} -> ${after.balance} (${status})`,
        });
      }
      if (refused) {
        const started = setCookies.filter((c) => /^(__Host-)?sid=[^;]+/.test(c));
        if (started.length > 0) {
          violations.push({
            kind: 'state-changed',
            message: `a refused request started a session: ${started.join(' | ')}`,
          });
        }
      }
    }

    this.#learn(op, status, text);
    const result: CaseResult = { spec, request, status, code, body: text.slice(0, 400), violations };
    this.#count(op, result);
    return result;
  }

  #checkErrorShape(
    method: string,
    status: number,
    contentType: string,
    text: string,
  ): { code?: string; problems: string[] } {
    const problems: string[] = [];
    if (!/application\/json/i.test(contentType))
      problems.push(`content-type ${JSON.stringify(contentType)} is not JSON`);
    // A HEAD answer has the GET answer's headers and no body.
    if (method === 'HEAD') return { problems };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      problems.push(`the body is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
      return { problems };
    }
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (!error || typeof error !== 'object') {
      problems.push(`the body has no error object: ${text.slice(0, 200)}`);
      return { problems };
    }
    const code = typeof error.code === 'string' ? error.code : undefined;
    if (code === undefined) problems.push(`error.code is not a string: ${text.slice(0, 200)}`);
    if (typeof error.message !== 'string') problems.push(`error.message is not a string: ${text.slice(0, 200)}`);
    if (code !== undefined) {
      if (!Object.hasOwn(ERROR_STATUS, code)) problems.push(`error.code "${code}" is not in ERROR_STATUS`);
      else if (ERROR_STATUS[code as ErrorCode] !== status) {
        problems.push(`error.code "${code}" is ${ERROR_STATUS[code as ErrorCode]} in ERROR_STATUS, answered ${status}`);
      }
    }
    const keys = Object.keys(body as object);
    if (keys.length !== 1) problems.push(`the error body has other members: ${keys.join(', ')}`);
    return { ...(code === undefined ? {} : { code }), problems };
  }

  /** Keeps the pools of known values current with what the case created or used up. */
  #learn(op: Operation, status: number, text: string): void {
    if (status < 200 || status >= 300) return;
    const parse = () => {
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch {
        return {};
      }
    };
    if (op.key === 'POST /api/auth/token' || op.key === 'POST /api/auth/refresh') {
      const token = parse().refreshToken;
      if (typeof token === 'string') this.hints.get('refreshToken')!.push(token);
    }
    if (op.key === 'POST /api/auth/register') {
      const user = parse().user as { username?: string } | undefined;
      if (user?.username) this.hints.get('toUsername')!.push(user.username);
    }
  }

  #count(op: Operation, result: CaseResult): void {
    const t = this.tally;
    t.cases++;
    let route = t.perRoute.get(op.key);
    if (!route) t.perRoute.set(op.key, (route = { cases: 0, statuses: new Map() }));
    route.cases++;
    route.statuses.set(result.status, (route.statuses.get(result.status) ?? 0) + 1);
    t.statuses.set(result.status, (t.statuses.get(result.status) ?? 0) + 1);
    let focus = t.perFocus.get(result.spec.focus);
    if (!focus) t.perFocus.set(result.spec.focus, (focus = new Map()));
    focus.set(result.status, (focus.get(result.status) ?? 0) + 1);
    // Only requests that reached the route as documented: a mangled path is some other URL's 404.
    const onRoute =
      result.request.method === op.method &&
      !result.spec.pathMutation &&
      Object.values(result.spec.params).every((p) => p.valid);
    if (onRoute && !op.documented.includes(result.status) && result.status !== 0) {
      let set = t.undocumented.get(op.key);
      if (!set) t.undocumented.set(op.key, (set = new Set()));
      set.add(result.status);
    }
    if (result.violations.length > 0) t.violations.push(result);
  }
}

// ---------------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------------

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s);

/** The request and answer of one case, for a failure message or a report. */
export function describeCase(result: CaseResult): string {
  const r = result.request;
  const lines = [
    `${r.method} ${clip(r.url, 300)}`,
    ...Object.entries(r.headers).map(([k, v]) => `  ${k}: ${clip(JSON.stringify(v), 200)}`),
  ];
  if (r.payload !== undefined) lines.push(`  body: ${clip(JSON.stringify(r.payload), 300)}`);
  lines.push(`-> ${result.status} ${clip(result.body, 300)}`);
  for (const v of result.violations) lines.push(`  ! ${v.kind}${v.known ? ` (known: ${v.known})` : ''}: ${v.message}`);
  return lines.join('\n');
}

/** Violations that are not known bugs. */
export const newViolations = (result: CaseResult) => result.violations.filter((v) => !v.known);

/** A printable summary: cases per route, statuses, undocumented statuses, violations grouped by kind. */
export function summarise(tally: Tally, title: string): string {
  const out: string[] = [`== ${title}: ${tally.cases} cases`];
  out.push('cases per route (status: count):');
  const width = Math.max(...[...tally.perRoute.keys()].map((k) => k.length));
  for (const [route, { cases, statuses }] of [...tally.perRoute].sort(([a], [b]) => a.localeCompare(b))) {
    const s = [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([st, n]) => `${st}:${n}`)
      .join(' ');
    out.push(`  ${route.padEnd(width)}  ${String(cases).padStart(5)}  ${s}`);
  }
  const counts = (m: Map<number, number>) =>
    [...m]
      .sort(([a], [b]) => a - b)
      .map(([st, n]) => `${st}:${n}`)
      .join(' ');
  out.push(`statuses: ${counts(tally.statuses)}`);
  out.push('statuses by what the case got wrong:');
  for (const [focus, m] of [...tally.perFocus].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`  ${focus.padEnd(12)}  ${counts(m)}`);
  }
  if (tally.undocumented.size > 0) {
    out.push("statuses not in the route's OpenAPI responses, for requests that reached it (informative):");
    for (const [route, set] of tally.undocumented) out.push(`  ${route}: ${[...set].sort().join(', ')}`);
  }
  const groups = new Map<string, CaseResult[]>();
  for (const result of tally.violations) {
    for (const v of result.violations) {
      const key = `${v.known ? `KNOWN ${v.known}` : 'NEW'} | ${result.spec.route} | ${v.kind} | ${result.status} ${result.code ?? ''}`;
      const list = groups.get(key) ?? [];
      if (!list.includes(result)) list.push(result);
      groups.set(key, list);
    }
  }
  const fresh = tally.violations.filter((r) => newViolations(r).length > 0).length;
  out.push(`violations: ${tally.violations.length} cases (${fresh} not known), ${groups.size} distinct`);
  for (const [key, results] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`-- ${key}: ${results.length} case(s); first:`);
    out.push(describeCase(results[0]!).replace(/^/gm, '     '));
  }
  return out.join('\n');
}
