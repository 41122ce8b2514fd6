import { hash } from 'node:crypto';
import { Type } from 'typebox';
import { AppError } from '../kernel/errors.ts';

/** The header of (IK) routes, for their schema and their OpenAPI document. */
export const IdempotencyKeyHeader = Type.Object(
  {
    'idempotency-key': Type.Optional(
      Type.String({ description: 'required: a unique value per operation (e.g. a UUID), 1 to 255 visible ASCII' }),
    ),
  },
  { additionalProperties: true },
);

/** A checked Idempotency-Key value. */
export type IdempotencyKey = string & { readonly __idempotencyKey: true };

/** The key of a request, checked: 400 when it is missing or not 1 to 255 visible ASCII characters. */
export function parseIdempotencyKey(header: string | string[] | undefined): IdempotencyKey {
  if (typeof header !== 'string' || header.length === 0) {
    throw new AppError(
      'idempotency_key_required',
      'Send an Idempotency-Key header (a unique value per operation, e.g. a UUID).',
    );
  }
  if (header.length > 255 || !/^[\x21-\x7e]+$/.test(header)) {
    throw new AppError('invalid_input', 'The Idempotency-Key must be 1 to 255 visible ASCII characters.');
  }
  return header as IdempotencyKey;
}

/** JSON with sorted keys: the same body in another key order has the same fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What makes two requests "the same operation": method, route and body (in any key order). */
export function fingerprintOf(operation: { method: string; route: string; body: unknown }): string {
  return hash('sha256', `${operation.method} ${operation.route} ${canonical(operation.body ?? null)}`, 'base64url');
}
