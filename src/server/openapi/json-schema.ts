/**
 * TypeBox (JSON Schema) to an OpenAPI 3.0 Schema Object, for the parts of the document that are no
 * route of the app server (the control API's routes, the WebSocket frames). Does what
 * @fastify/swagger does to the routes' schemas, so both read alike: `const` becomes a one-value
 * `enum`, a union with `null` becomes `nullable`, `patternProperties` (a TypeBox Record) becomes
 * `additionalProperties`, a shared schema's `$ref` points into components, and `examples` becomes
 * `example`. `names` turns the schemas it holds (by identity) into `$ref`s to those components.
 */
type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isNull = (schema: unknown) => isObject(schema) && schema.type === 'null';

export function toOpenApiSchema(schema: unknown, names: ReadonlyMap<object, string> = new Map()): Json {
  const convert = (value: unknown, top: boolean): unknown => {
    if (Array.isArray(value)) return value.map((v) => convert(v, false));
    if (!isObject(value)) return value;
    const named = names.get(value);
    if (named !== undefined && !top) return { $ref: `#/components/schemas/${named}` };
    const out: Json = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === '$id' || key === '$schema') continue;
      if (key === '$ref' && typeof v === 'string') out.$ref = v.startsWith('#') ? v : `#/components/schemas/${v}`;
      else if (key === 'const') out.enum = [v];
      else if (key === 'examples' && Array.isArray(v)) out.example = v[0];
      else if (key === 'patternProperties' && isObject(v))
        out.additionalProperties = convert(Object.values(v)[0], false);
      else if (key === 'properties' && isObject(v))
        out.properties = Object.fromEntries(Object.entries(v).map(([name, p]) => [name, convert(p, false)]));
      else out[key] = convert(v, false);
    }
    // `anyOf: [X, {type: 'null'}]` is X, nullable (OpenAPI 3.0 has no null type).
    const members = out.anyOf;
    if (Array.isArray(members) && members.some(isNull)) {
      const rest = members.filter((m) => !isNull(m));
      if (rest.length === 1 && isObject(rest[0]) && 'type' in rest[0]) {
        delete out.anyOf;
        return { ...rest[0], ...out, nullable: true };
      }
    }
    return out;
  };
  // TypeBox's own markers (`~kind`) are not enumerable: Object.entries leaves them out.
  const converted = convert(schema, true) as Json;
  if (JSON.stringify(converted).includes('"type":"null"'))
    throw new Error('A null type has no OpenAPI 3.0 form outside a union of null and one typed schema.');
  return converted;
}
