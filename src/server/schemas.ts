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
  for (const status of errors) out[status] = Type.Ref('Error');
  return out;
}

export const NoContent = Type.Null({ description: 'No content' });
