import type { FastifyRequest } from 'fastify';
import type { UserId } from '../kernel/ids.ts';
import type { IdempotentOperation } from './idempotency.ts';
import { fingerprintOf, parseIdempotencyKey } from './key.ts';

/** The (IK) operation a route's request asks for: its checked key and its fingerprint. */
export function operationOf(request: FastifyRequest, userId: UserId): IdempotentOperation {
  return {
    userId,
    key: parseIdempotencyKey(request.headers['idempotency-key']),
    fingerprint: fingerprintOf({
      method: request.method,
      route: request.routeOptions.url ?? request.url,
      body: request.body,
    }),
  };
}
