import { Type } from 'typebox';
import { PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN } from './account-rules.ts';

export const User = Type.Object({ id: Type.String(), username: Type.String() });
export const UserReply = Type.Object({ user: User });

export const Credentials = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
    password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX }),
  },
  // The served document's example body (examples[0]); it must pass this schema.
  { additionalProperties: false, examples: [{ username: 'alice', password: 'correct horse battery' }] },
);

export const Registration = Type.Object(
  {
    username: Type.String({
      pattern: USERNAME_PATTERN,
      description: '3 to 32 characters from a-z, 0-9, _ and -',
    }),
    password: Type.String({
      minLength: 1,
      maxLength: PASSWORD_MAX,
      description: `at least ${PASSWORD_MIN} characters, not a common password, not containing the username`,
    }),
  },
  { additionalProperties: false, examples: [{ username: 'alice', password: 'correct horse battery' }] },
);

export const SessionInfo = Type.Object({
  id: Type.String(),
  current: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  lastSeenAt: Type.String({ format: 'date-time' }),
  userAgent: Type.String(),
});
export const SessionList = Type.Object({ sessions: Type.Array(SessionInfo) });
export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
