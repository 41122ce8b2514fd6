import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type pg from 'pg';
import type { StateStore } from '../state/types.ts';
import { Chat } from './messages.ts';
import { chatRoutes } from './routes.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The chat's records and signals, for the live edge (src/realtime). */
    chat: Chat;
  }
}

export interface ChatDeps {
  db: pg.Pool;
  state: StateStore;
  log: FastifyBaseLogger;
}

/**
 * Chat over HTTP: rooms and messages are records in PostgreSQL (a gapless seq per room, sends
 * idempotent by clientMsgId), read marks too; presence is session state. Each new message
 * publishes `chat:<roomId>` on the bus: the wake-up the live edge (src/realtime) listens to.
 */
export const chatPlugin = fp<ChatDeps>(
  async (fastify, { db, state, log }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const chat = new Chat(db, state.hashes, state.bus, log, state.kind === 'postgres');
    app.decorate('chat', chat);
    chatRoutes(app, { chat, auth: app.auth });
  },
  { name: 'chat', dependencies: ['accounts'], fastify: '5.x' },
);
