/**
 * The supervisor's control API in the app server's document: the supervisor answers `/_cluster`
 * (and `/metrics`) at the balancer's address, the origin this document describes, so one document
 * covers the whole public origin. Built from the same route definitions the control API registers
 * (src/supervisor/control-api-schemas.ts), the way @fastify/swagger builds the app's operations.
 */
import { STATUS_CODES } from 'node:http';
import type { TSchema } from 'typebox';
import {
  ClusterServerSchema,
  ClusterViewSchema,
  CONTROL_ROUTES,
  ManagedServerSchema,
} from '../../supervisor/control-api-schemas.ts';
import { toOpenApiSchema } from './json-schema.ts';

type Json = Record<string, unknown>;

/** The schemas shown as named components (a typed client gets these names). */
const NAMED = new Map<object, string>([
  [ClusterViewSchema, 'ClusterView'],
  [ClusterServerSchema, 'ClusterServer'],
  [ManagedServerSchema, 'ManagedServer'],
]);

const schemaOf = (schema: unknown): Json =>
  NAMED.has(schema as object)
    ? { $ref: `#/components/schemas/${NAMED.get(schema as object)}` }
    : toOpenApiSchema(schema, NAMED);

function response(status: string, schema: Json): Json {
  const description = typeof schema.description === 'string' ? schema.description : (STATUS_CODES[status] ?? status);
  const content = schema.content as Record<string, { schema: unknown }> | undefined;
  if (content) {
    return {
      description,
      content: Object.fromEntries(
        Object.entries(content).map(([type, media]) => [type, { schema: schemaOf(media.schema) }]),
      ),
    };
  }
  return { description, content: { 'application/json': { schema: schemaOf(schema) } } };
}

/** A JSON body, with its schema's example as the media type's example. */
function requestBody(body: TSchema): Json {
  const { example, ...schema } = schemaOf(body);
  return { required: true, content: { 'application/json': { schema, ...(example ? { example } : {}) } } };
}

function pathParameters(params: TSchema | undefined): Json[] {
  const properties = (params as { properties?: Record<string, Json> } | undefined)?.properties ?? {};
  return Object.entries(properties).map(([name, schema]) => {
    const { description, ...rest } = toOpenApiSchema(schema);
    return { name, in: 'path', required: true, description, schema: rest };
  });
}

/** The control API's paths, and the components they name. */
export function clusterControl(): { paths: Record<string, Record<string, Json>>; schemas: Record<string, Json> } {
  const paths: Record<string, Record<string, Json>> = {};
  for (const { method, url, schema } of Object.values(CONTROL_ROUTES)) {
    const { params, body, response: answers, ...doc } = schema as typeof schema & { params?: TSchema; body?: TSchema };
    const path = url.replace(/:(\w+)/g, '{$1}');
    const parameters = pathParameters(params);
    (paths[path] ??= {})[method.toLowerCase()] = {
      ...doc,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(body ? { requestBody: requestBody(body) } : {}),
      responses: Object.fromEntries(
        Object.entries(answers as Record<string, Json>).map(([status, s]) => [status, response(status, s)]),
      ),
    };
  }
  const schemas = Object.fromEntries([...NAMED].map(([schema, name]) => [name, toOpenApiSchema(schema, NAMED)]));
  return { paths, schemas };
}
