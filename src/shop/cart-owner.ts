import type { FastifyReply, FastifyRequest } from 'fastify';
import { setSessionCookie } from '../accounts/session-cookie.ts';
import type { Authenticator } from '../accounts/authenticate.ts';
import type { SessionManager } from '../accounts/session-manager.ts';
import type { CartOwner } from './cart.ts';

/**
 * Whose cart a request means: the signed-in user's (cookie session or bearer token), else the
 * visitor session's. A visitor with no session gets one on the first cart write (and its cookie);
 * reads never create one.
 */
export function cartOwners(auth: Authenticator, sessions: SessionManager) {
  async function current(request: FastifyRequest): Promise<CartOwner | null> {
    const user = await auth.optionalUser(request);
    if (user) return { userId: user.userId };
    const session = await auth.session(request);
    return session ? { session } : null;
  }

  async function forWrite(request: FastifyRequest, reply: FastifyReply): Promise<CartOwner> {
    const owner = await current(request);
    if (owner) return owner;
    const started = await sessions.start(null, request.headers['user-agent'] ?? '');
    setSessionCookie(request, reply, started.token);
    return { session: started.session };
  }

  return { current, forWrite };
}

export type CartOwners = ReturnType<typeof cartOwners>;
