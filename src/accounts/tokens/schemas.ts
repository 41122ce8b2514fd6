import { Type } from 'typebox';

export const TokenPair = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'seconds until the access token expires' }),
});

export const RefreshRequest = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 200 }) },
  // The served document's example body: a refresh token as POST /api/auth/token gives one.
  { additionalProperties: false, examples: [{ refreshToken: 'rt_9mJx2Qp7vK4sLw8nTf3bYh6cZr1aEd5gUo0iXk2PqNs' }] },
);

export const Jwks = Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) });
