import type { FastifyBaseLogger } from 'fastify';
import type { UserId } from '../kernel/ids.ts';
import type { Bus } from '../state/types.ts';

const CHANNEL = 'auth:revoked';

/**
 * "A user's credentials changed": published after a logout, a revoked session or a log out
 * everywhere, so every server checks again at once the long-lived connections it let in for that
 * user (the chat's sockets) instead of finding out at its next periodic check. A wake-up only: the
 * store says what is still valid.
 */
export class Revocations {
  constructor(
    private readonly bus: Bus,
    private readonly log: FastifyBaseLogger,
  ) {}

  announce(userId: UserId): void {
    this.bus
      .publish(CHANNEL, userId)
      .catch((err: unknown) =>
        this.log.warn({ err, userId }, 'revocation not announced; sockets close at their next check'),
      );
  }

  /** Calls `handler` with the user id of every announcement, from any server. */
  listen(handler: (userId: UserId) => void): Promise<() => Promise<void>> {
    return this.bus.subscribe(CHANNEL, (message) => handler(message as UserId));
  }
}
