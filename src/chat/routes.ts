import type { Authenticator } from '../accounts/authenticate.ts';
import type { App } from '../kernel/app-type.ts';
import { NoContent, responses, Security } from '../kernel/responses.ts';
import type { Chat } from './messages.ts';
import {
  CreateRoomBody,
  HISTORY_DEFAULT_LIMIT,
  HistoryQuery,
  MessageList,
  MessageReply,
  PresenceReply,
  ReadBody,
  RoomList,
  RoomParams,
  RoomReply,
  SendBody,
  UnreadReply,
} from './schemas.ts';

const tags = ['chat'];

export interface ChatRoutesDeps {
  chat: Chat;
  auth: Authenticator;
}

/** The HTTP half of the chat: rooms, history, sending, read marks, unread counts, presence. */
export function chatRoutes(app: App, { chat, auth }: ChatRoutesDeps): void {
  app.get(
    '/api/chat/rooms',
    {
      schema: {
        operationId: 'listRooms',
        summary: 'List the chat rooms',
        tags,
        security: Security.signedIn,
        description: 'Every room, oldest first. Rooms are open to every signed-in user.',
        response: responses({ 200: RoomList }, [401]),
      },
    },
    async (request) => {
      await auth.requireUser(request);
      return { rooms: await chat.rooms() };
    },
  );

  app.post(
    '/api/chat/rooms',
    {
      schema: {
        operationId: 'createRoom',
        summary: 'Create a chat room',
        tags,
        security: Security.signedIn,
        description: 'Creates a room; 409 `conflict` when the name is taken.',
        body: CreateRoomBody,
        response: responses({ 201: RoomReply }, [400, 401, 409]),
      },
    },
    async (request, reply) => {
      const { userId } = await auth.requireUser(request);
      return reply.code(201).send({ room: await chat.createRoom(request.body.name, userId) });
    },
  );

  app.get(
    '/api/chat/rooms/:id/messages',
    {
      schema: {
        operationId: 'listMessages',
        summary: "Read a room's messages",
        tags,
        security: Security.signedIn,
        description: `Messages with seq > after (default 0), in seq order, at most limit (default ${HISTORY_DEFAULT_LIMIT}, at most 200).`,
        params: RoomParams,
        querystring: HistoryQuery,
        response: responses({ 200: MessageList }, [400, 401, 404]),
      },
    },
    async (request) => {
      await auth.requireUser(request);
      const after = Number(request.query.after ?? 0);
      const limit = Number(request.query.limit ?? HISTORY_DEFAULT_LIMIT);
      return { messages: await chat.history(request.params.id, after, limit) };
    },
  );

  app.post(
    '/api/chat/rooms/:id/messages',
    {
      schema: {
        operationId: 'sendMessage',
        summary: 'Send a message to a room',
        tags,
        security: Security.signedIn,
        description:
          'Sends a message: it gets the next seq of the room (no gap). The same clientMsgId again (same room, same sender) answers the stored message, same seq, 201 again.',
        params: RoomParams,
        body: SendBody,
        response: responses({ 201: MessageReply }, [400, 401, 404]),
      },
    },
    async (request, reply) => {
      const user = await auth.requireUser(request);
      const { text, clientMsgId } = request.body;
      const { message } = await chat.send(request.params.id, user, clientMsgId, text);
      return reply.code(201).send({ message });
    },
  );

  app.post(
    '/api/chat/rooms/:id/read',
    {
      schema: {
        operationId: 'markRoomRead',
        summary: 'Mark a room read up to a seq',
        tags,
        security: Security.signedIn,
        description: 'Records the last seq the user has read in the room (a record; it never moves backwards).',
        params: RoomParams,
        body: ReadBody,
        response: responses({ 204: NoContent }, [400, 401, 404]),
      },
    },
    async (request, reply) => {
      const { userId } = await auth.requireUser(request);
      await chat.markRead(userId, request.params.id, request.body.seq);
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/chat/unread',
    {
      schema: {
        operationId: 'getUnreadCounts',
        summary: 'Unread counts per room',
        tags,
        security: Security.signedIn,
        description:
          'Unread messages per room: every room is listed, 0 included; a room the user never marked read counts all its messages.',
        response: responses({ 200: UnreadReply }, [401]),
      },
    },
    async (request) => {
      const { userId } = await auth.requireUser(request);
      return { rooms: await chat.unread(userId) };
    },
  );

  app.get(
    '/api/chat/rooms/:id/presence',
    {
      schema: {
        operationId: 'getRoomPresence',
        summary: 'Who is online in a room',
        tags,
        security: Security.signedIn,
        description: 'Who is online in the room (from session state; filled by the WebSocket edge).',
        params: RoomParams,
        response: responses({ 200: PresenceReply }, [400, 401, 404]),
      },
    },
    async (request) => {
      await auth.requireUser(request);
      return { online: await chat.online(request.params.id) };
    },
  );
}
