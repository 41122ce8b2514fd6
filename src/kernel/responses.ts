import { Type, type TSchema } from 'typebox';
import { ERROR_STATUS } from './errors.ts';

/** The error shape of the contract, shared by every route's OpenAPI description. */
export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(Object.keys(ERROR_STATUS).map((code) => Type.Literal(code))),
      message: Type.String(),
    }),
  },
  { $id: 'Error' },
);

/** Response schemas for a route: the success shape plus the error shape for the given statuses. */
export function responses(success: Record<number, TSchema>, errors: number[] = []): Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...success };
  // A route that authenticates reads the session cookie, and a dead or made-up id there counts
  // against the id-guessing limit of the client's address: such a route can answer 429 too.
  const statuses = errors.includes(401) && !errors.includes(429) ? [...errors, 429] : errors;
  for (const status of statuses) out[status] = Type.Ref('Error');
  return out;
}

export const NoContent = Type.Null({ description: 'No content' });
