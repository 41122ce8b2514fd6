import type { FastifyBaseLogger } from 'fastify';
import type { Revocations } from '../accounts/revocations.ts';
import type { Chat } from '../chat/messages.ts';
import { onlineFrom, presenceKey, deadFields } from '../chat/presence.ts';
import { encodeRoomSignal, parseRoomSignal, parseUserSignal, roomChannel, USERS_CHANNEL } from '../chat/signals.ts';
import { AppError, type ErrorCode } from '../kernel/errors.ts';
import { toAppError } from '../kernel/http-errors.ts';
import type { UserId } from '../kernel/ids.ts';
import { everyInterval } from '../kernel/periodic.ts';
import type { StateStore } from '../state/types.ts';
import { CLOSE, type ClientFrame } from './frames.ts';
import { SHUTDOWN_CLOSE_TIMEOUT_MS, type Connection } from './connection.ts';
import { PresenceBoard } from './presence-board.ts';
import { RoomHub } from './room-hub.ts';

export interface EdgeSettings {
  serverId: string;
  presenceTtlMs: number;
  /** How often every socket's credential is checked again. */
  recheckMs: number;
  /** How often every socket is pinged (Connection.checkAlive). */
  pingMs: number;
}

export interface EdgeDeps {
  chat: Chat;
  state: StateStore;
  revocations: Revocations;
  settings: EdgeSettings;
  log: FastifyBaseLogger;
}

/** How often the rooms with sockets here compare their last seq with the records (a lost wake-up). */
const SWEEP_MS = 2_000;
/** How often each room's presence is read again (someone else's server may have died). */
const PRESENCE_REFRESH_MS = 2_000;
/** A socket's typing is passed on at most this often per room. */
const TYPING_EVERY_MS = 1_000;

/**
 * The live edge of one app server: the sockets connected here, and a hub per room they follow.
 * Everything else is shared: messages and read marks are records, presence is session state, and
 * the bus carries wake-ups between servers (new message, typing, presence changed, read, revoked).
 * With the memory store (the stateful design) the bus reaches this server only: its sockets hear
 * the messages sent here, and nothing else does.
 */
export class ChatEdge {
  readonly #hubs = new Map<string, Promise<RoomHub>>();
  readonly #byUser = new Map<UserId, Set<Connection>>();
  readonly #typingSentAt = new WeakMap<Connection, Map<string, number>>();
  readonly #presence: PresenceBoard;
  readonly #stoppers: (() => unknown)[] = [];
  readonly #crossServer: boolean;

  private constructor(private readonly deps: EdgeDeps) {
    const { state, settings, log } = deps;
    this.#crossServer = state.kind !== 'memory';
    this.#presence = new PresenceBoard(
      state.hashes,
      settings.serverId,
      settings.presenceTtlMs,
      (roomId) => this.#publish(roomId, encodeRoomSignal({ k: 'presence' })),
      log,
    );
  }

  static async start(deps: EdgeDeps): Promise<ChatEdge> {
    const edge = new ChatEdge(deps);
    await edge.#listen();
    return edge;
  }

  /** Closes this server decided, by close code (4001 signed out, 4008 slow consumer, 4029 flooding, 1001 stop). */
  readonly closes = new Map<number, number>();

  get connections(): number {
    let count = 0;
    for (const set of this.#byUser.values()) count += set.size;
    return count;
  }

  countClose(code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
  }

  /** A socket was let in: it hears which server holds it, then its unread counts. */
  attach(connection: Connection): void {
    let set = this.#byUser.get(connection.userId);
    if (!set) this.#byUser.set(connection.userId, (set = new Set()));
    set.add(connection);
    connection.send({ type: 'hello', server: this.deps.settings.serverId });
    void this.#sendUnread([connection]);
  }

  /** The socket closed (or was closed): it leaves its rooms and their presence. */
  detach(connection: Connection): void {
    const set = this.#byUser.get(connection.userId);
    set?.delete(connection);
    if (set?.size === 0) this.#byUser.delete(connection.userId);
    for (const roomId of connection.rooms) void this.#leave(connection, roomId);
    connection.rooms.clear();
  }

  /** Runs one client frame; every failure becomes an error frame (the socket stays open). */
  async handle(connection: Connection, frame: ClientFrame): Promise<void> {
    try {
      switch (frame.type) {
        case 'subscribe':
          return await this.#subscribe(connection, frame.room, frame.after);
        case 'unsubscribe':
          if (connection.rooms.delete(frame.room)) await this.#leave(connection, frame.room);
          return connection.send({ type: 'unsubscribed', room: frame.room });
        case 'send': {
          const author = { userId: connection.userId, username: connection.username };
          const { message } = await this.deps.chat.send(frame.room, author, frame.clientMsgId, frame.text);
          connection.send({ type: 'ack', clientMsgId: frame.clientMsgId, message });
          // This server's hub of the room (if any socket here follows it) hears at once, not by the bus.
          (await this.#hubs.get(frame.room)?.catch(() => undefined))?.offer(message.seq, message);
          return;
        }
        case 'typing':
          return this.#typing(connection, frame.room);
        case 'read':
          return await this.deps.chat.markRead(connection.userId, frame.room, frame.seq);
        case 'ping':
          return connection.send({ type: 'pong' });
      }
    } catch (error) {
      const appError = toAppError(error);
      if (appError.code === 'internal_error')
        this.deps.log.error({ err: error, frame: frame.type }, 'chat frame failed');
      const about = 'clientMsgId' in frame ? { clientMsgId: frame.clientMsgId } : {};
      const room = 'room' in frame ? { room: frame.room } : {};
      connection.send({ type: 'error', code: appError.code, message: appError.message, ...room, ...about });
    }
  }

  /** Answers a frame that could not be run (bad JSON, bad shape, over the rate). */
  refuse(connection: Connection, code: ErrorCode, message: string): void {
    connection.send({ type: 'error', code, message });
  }

  /** Graceful stop: every socket is told to go elsewhere (1001) and this server's presence is taken off. */
  async stop(): Promise<void> {
    for (const stop of this.#stoppers) await stop();
    for (const set of this.#byUser.values())
      for (const c of set) c.close(1001, 'server shutting down; reconnect', SHUTDOWN_CLOSE_TIMEOUT_MS);
    await this.#presence.clear();
    for (const pending of this.#hubs.values()) (await pending.catch(() => undefined))?.close();
    this.#hubs.clear();
  }

  async #listen(): Promise<void> {
    const { state, revocations, settings, chat, log } = this.deps;
    this.#stoppers.push(
      await state.bus.subscribe(USERS_CHANNEL, (raw) => {
        const signal = parseUserSignal(raw);
        const set = signal && this.#byUser.get(signal.userId);
        if (set) void this.#sendUnread([...set]);
      }),
      await revocations.listen((userId) => void this.#recheck([...(this.#byUser.get(userId) ?? [])])),
      state.bus.onReconnect(() => this.#catchUpAll()),
      everyInterval('presence heartbeat', this.#presence.heartbeatMs, () => this.#presence.heartbeat(), log),
      everyInterval('presence refresh', PRESENCE_REFRESH_MS, () => this.#refreshPresence(), log),
      everyInterval('socket recheck', settings.recheckMs, () => this.#recheck(this.#all()), log),
      everyInterval('socket ping', settings.pingMs, async () => this.#checkAlive(), log),
    );
    // The stateful design has no shared truth to sweep against: its live chat stops at this server.
    if (this.#crossServer) this.#stoppers.push(everyInterval('chat sweep', SWEEP_MS, () => this.#sweep(chat), log));
  }

  async #subscribe(connection: Connection, roomId: string, after: number | undefined): Promise<void> {
    const room = await this.deps.chat.room(roomId);
    if (!room) throw new AppError('not_found', 'There is no chat room with that id.');
    if (!connection.open) return;
    const first = !connection.rooms.has(roomId);
    connection.rooms.add(roomId); // before the mark: a socket that closes meanwhile takes it off
    // Marked before the socket joins the hub, and the hub's presence read after the mark: its first
    // presence frame counts it (it was the list without it, then the list with it once the bus
    // brought the change round). A hub opened from here on reads presence itself (#openHub).
    if (first) await this.#presence.join(roomId, connection.username);
    const reread = first && this.#hubs.has(roomId);
    let hub = await this.#hub(roomId);
    if (reread) await this.#refreshRoomPresence(hub).catch(() => undefined);
    while (hub.closed) hub = await this.#hub(roomId); // Its last socket left meanwhile; a new hub reads presence.
    if (!connection.open) return;
    // A client cannot claim messages the room does not have yet; without `after` it starts live.
    hub.add(connection, Math.min(after ?? room.lastSeq, room.lastSeq));
  }

  async #leave(connection: Connection, roomId: string): Promise<void> {
    const pending = this.#hubs.get(roomId);
    const hub = await pending?.catch(() => undefined);
    hub?.remove(connection);
    if (hub?.closed && this.#hubs.get(roomId) === pending) {
      this.#hubs.delete(roomId);
      await hub.unsubscribe();
    }
    await this.#presence
      .leave(roomId, connection.username)
      .catch((err: unknown) => this.deps.log.warn({ err, roomId }, 'presence not cleared; it lapses by TTL'));
  }

  /** The room's hub, listening on the bus before anyone reads the records (no message falls between). */
  #hub(roomId: string): Promise<RoomHub> {
    let pending = this.#hubs.get(roomId);
    if (!pending) {
      pending = this.#openHub(roomId);
      this.#hubs.set(roomId, pending);
      pending.catch(() => this.#hubs.delete(roomId));
    }
    return pending;
  }

  async #openHub(roomId: string): Promise<RoomHub> {
    const { chat, state, log } = this.deps;
    const read = (room: string, after: number, limit: number) => chat.history(room, after, limit);
    const hub = new RoomHub(roomId, read, log, !this.#crossServer);
    const unsubscribe = await state.bus.subscribe(roomChannel(roomId), (raw) => {
      const signal = parseRoomSignal(raw);
      if (!signal) return;
      if (signal.k === 'msg') {
        for (const message of signal.earlier ?? []) hub.offer(message.seq, message);
        hub.offer(signal.seq, signal.message);
      } else if (signal.k === 'typing') hub.typing(signal.user);
      else void this.#refreshRoomPresence(hub);
    });
    hub.unsubscribe = unsubscribe;
    await this.#refreshRoomPresence(hub).catch(() => undefined);
    return hub;
  }

  #typing(connection: Connection, roomId: string): void {
    if (!connection.rooms.has(roomId))
      throw new AppError('invalid_input', 'Subscribe to the room before typing in it.');
    let sent = this.#typingSentAt.get(connection);
    if (!sent) this.#typingSentAt.set(connection, (sent = new Map()));
    const now = Date.now();
    if (now - (sent.get(roomId) ?? 0) < TYPING_EVERY_MS) return;
    sent.set(roomId, now);
    this.#publish(roomId, encodeRoomSignal({ k: 'typing', user: connection.username }));
  }

  #publish(roomId: string, signal: string): void {
    this.deps.state.bus
      .publish(roomChannel(roomId), signal)
      .catch((err: unknown) => this.deps.log.warn({ err, roomId }, 'chat signal not published'));
  }

  async #sendUnread(connections: Connection[]): Promise<void> {
    const first = connections[0];
    if (!first) return;
    try {
      const rooms = await this.deps.chat.unread(first.userId);
      for (const connection of connections) connection.send({ type: 'unread', rooms });
    } catch (err) {
      this.deps.log.warn({ err }, 'unread counts not sent');
    }
  }

  /** Closes the sockets whose session or token is no longer valid; a store that cannot answer closes none. */
  async #recheck(connections: Connection[]): Promise<void> {
    await Promise.all(
      connections.map(async (connection) => {
        const valid = await connection.credential.stillValid().catch(() => true);
        if (!valid) connection.close(CLOSE.revoked, 'signed out');
      }),
    );
  }

  #checkAlive(): void {
    for (const connection of this.#all()) connection.checkAlive();
  }

  #all(): Connection[] {
    return [...this.#byUser.values()].flatMap((set) => [...set]);
  }

  async #readyHubs(): Promise<RoomHub[]> {
    const settled = await Promise.allSettled(this.#hubs.values());
    return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /** The bus came back: whatever it dropped meanwhile is read from the records, presence too. */
  #catchUpAll(): void {
    void this.#readyHubs().then((hubs) => {
      for (const hub of hubs) {
        hub.pump();
        void this.#refreshRoomPresence(hub).catch(() => undefined);
      }
    });
  }

  /** Rooms whose last seq is past what this server's sockets have: a wake-up was lost, read it. */
  async #sweep(chat: Chat): Promise<void> {
    const hubs = await this.#readyHubs();
    if (hubs.length === 0) return;
    const lastSeqs = await chat.lastSeqs(hubs.map((hub) => hub.roomId));
    for (const hub of hubs) if ((lastSeqs.get(hub.roomId) ?? 0) > hub.cursor) hub.pump();
  }

  async #refreshPresence(): Promise<void> {
    await Promise.all((await this.#readyHubs()).map((hub) => this.#refreshRoomPresence(hub)));
  }

  async #refreshRoomPresence(hub: RoomHub): Promise<void> {
    const hashes = this.deps.state.hashes;
    const key = presenceKey(hub.roomId);
    const fields = await hashes.getAll(key);
    const now = Date.now();
    hub.setOnline(onlineFrom(fields, now));
    for (const field of deadFields(fields, now)) await hashes.deleteField(key, field);
  }
}
