/**
 * A small chat client for `/ws`, in the browser (the web app) and in Node (tests, lab): reconnects
 * with exponential backoff and full jitter, subscribes again with the last seq it has, drops
 * duplicates by seq, and sends again what was not acknowledged (the same clientMsgId: the server
 * stores it once). When the socket has been quiet for a while it sends a `ping`; no frame back in
 * time means the path is dead even though no close came, so it reconnects (browsers neither send
 * nor show WebSocket pings). It imports types only, so the web app bundles it as is.
 */

import type { ChatMessage } from '../chat/types.ts';

/** What the client needs of a WebSocket: the browser's, or `ws` in Node. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A stored message as frames carry it (the chat's own type: a type import leaves no code behind). */
export type Message = ChatMessage;

export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ChatClientOptions {
  /** `ws://host/ws` (with `?access_token=` for a token). May be a function: asked at every (re)connect. */
  url: string | (() => string);
  /** Opens a socket: `(url) => new WebSocket(url)` in a browser. */
  open(url: string): SocketLike;
  /** First backoff step. @default 100 */
  minDelayMs?: number;
  /** @default 5000 */
  maxDelayMs?: number;
  /** Close codes after which the client does not reconnect. @default [4001] (signed out) */
  finalCodes?: number[];
  /**
   * Quiet this long, it sends a `ping`; quiet this long again, it gives the socket up and
   * reconnects: a silent path is found within two to three of these. 0: never. @default 10000
   */
  heartbeatMs?: number;
  /** The jitter's source, a number in [0, 1): tests pin it to see the backoff itself. @default Math.random */
  random?: () => number;
}

export interface ChatClientEvents {
  /** The server that holds the socket, at each (re)connect. */
  hello(server: string): void;
  message(room: string, message: Message): void;
  subscribed(room: string, lastSeq: number): void;
  presence(room: string, online: string[]): void;
  typing(room: string, users: string[]): void;
  unread(rooms: Record<string, number>): void;
  error(error: { code: string; message: string; room?: string; clientMsgId?: string }): void;
  status(status: ClientStatus, detail?: { code: number; reason: string }): void;
}

interface PendingSend {
  room: string;
  text: string;
  resolve(message: Message): void;
  reject(error: Error): void;
}

const OPEN = 1;
/** A send the server refused for rate goes again after this (and up to as much again, at random). */
const RESEND_AFTER_MS = 500;

let counter = 0;
/** A clientMsgId unique enough for one client's sends: time, counter and randomness. */
export const newClientMsgId = () =>
  `${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

export class ChatClient {
  /** room -> the last seq this client has (what it resubscribes with). */
  readonly #rooms = new Map<string, number>();
  readonly #pending = new Map<string, PendingSend>();
  readonly #listeners = new Map<keyof ChatClientEvents, Set<(...args: never[]) => void>>();
  #socket: SocketLike | undefined;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #status: ClientStatus = 'closed';
  #stopped = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** A frame came since the last heartbeat tick. */
  #heard = false;
  /** A ping went out at the last tick and nothing has come since. */
  #pinged = false;

  constructor(private readonly options: ChatClientOptions) {}

  get status(): ClientStatus {
    return this.#status;
  }

  /** The last seq received in each subscribed room. */
  get rooms(): ReadonlyMap<string, number> {
    return this.#rooms;
  }

  on<K extends keyof ChatClientEvents>(event: K, listener: ChatClientEvents[K]): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  connect(): this {
    this.#stopped = false;
    this.#open();
    return this;
  }

  /** Follows a room from `after` (default: from now on; give the last seq you have to resume). */
  subscribe(room: string, after?: number): void {
    if (after !== undefined || !this.#rooms.has(room)) this.#rooms.set(room, after ?? -1);
    this.#sendFrame(this.#subscribeFrame(room));
  }

  unsubscribe(room: string): void {
    this.#rooms.delete(room);
    this.#sendFrame({ type: 'unsubscribe', room });
  }

  /** Sends a message; resolves with the stored message once acknowledged (after reconnects, if need be). */
  send(room: string, text: string, clientMsgId = newClientMsgId()): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.#pending.set(clientMsgId, { room, text, resolve, reject });
      this.#sendFrame({ type: 'send', room, text, clientMsgId });
    });
  }

  typing(room: string): void {
    this.#sendFrame({ type: 'typing', room });
  }

  read(room: string, seq: number): void {
    this.#sendFrame({ type: 'read', room, seq });
  }

  /** Stops for good: no reconnect; unacknowledged sends fail. */
  close(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    this.#socket?.close(1000, 'bye');
    this.#socket = undefined;
    this.#setStatus('closed');
    for (const [id, pending] of this.#pending) pending.reject(new Error(`closed before ${id} was acknowledged`));
    this.#pending.clear();
  }

  #open(): void {
    const url = typeof this.options.url === 'function' ? this.options.url() : this.options.url;
    this.#setStatus(this.#attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = this.options.open(url);
    this.#socket = socket;
    socket.onopen = () => {
      this.#attempt = 0;
      this.#setStatus('open');
      this.#startHeartbeat(socket);
      for (const room of this.#rooms.keys()) this.#sendFrame(this.#subscribeFrame(room));
      for (const [clientMsgId, p] of this.#pending)
        this.#sendFrame({ type: 'send', room: p.room, text: p.text, clientMsgId });
    };
    socket.onmessage = (event) => {
      if (this.#socket !== socket) return; // A socket given up as silent, heard again: too late.
      this.#heard = true;
      this.#receive(String(event.data));
    };
    socket.onerror = () => {}; // A close follows; it decides.
    socket.onclose = (event) => this.#closed(socket, event);
  }

  /** The socket ended (closed, or given up as silent): reconnect after a backoff, unless that was final. */
  #closed(socket: SocketLike, event: { code: number; reason: string }): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    clearInterval(this.#heartbeat);
    if (this.#stopped) return;
    if ((this.options.finalCodes ?? [4001]).includes(event.code)) {
      this.#stopped = true;
      this.#setStatus('closed', event);
      for (const pending of this.#pending.values()) pending.reject(new Error(`closed: ${event.reason || event.code}`));
      this.#pending.clear();
      return;
    }
    this.#setStatus('reconnecting', event);
    // Full jitter: clients of a dead server do not all come back in the same millisecond.
    const ceiling = Math.min(this.options.maxDelayMs ?? 5_000, (this.options.minDelayMs ?? 100) * 2 ** this.#attempt++);
    this.#timer = setTimeout(() => this.#open(), (this.options.random ?? Math.random)() * ceiling);
  }

  /**
   * Each tick: a socket that heard something is fine; a quiet one is pinged; one still quiet a
   * tick after its ping is given up (its close handshake could wait on the dead path for good, so
   * the client does not wait for it) and replaced.
   */
  #startHeartbeat(socket: SocketLike): void {
    clearInterval(this.#heartbeat);
    const every = this.options.heartbeatMs ?? 10_000;
    if (every <= 0) return;
    this.#heard = false;
    this.#pinged = false;
    this.#heartbeat = setInterval(() => {
      if (this.#heard) {
        this.#heard = false;
        this.#pinged = false;
      } else if (!this.#pinged) {
        this.#pinged = true;
        this.#sendFrame({ type: 'ping' });
      } else {
        socket.close(4000, 'no answer to ping');
        this.#closed(socket, { code: 1006, reason: 'no answer to ping' });
      }
    }, every);
  }

  #subscribeFrame(room: string) {
    const after = this.#rooms.get(room);
    return after === undefined || after < 0 ? { type: 'subscribe', room } : { type: 'subscribe', room, after };
  }

  #receive(data: string): void {
    let frame: Record<string, any>;
    try {
      frame = JSON.parse(data) as Record<string, any>;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'hello':
        return this.#emit('hello', frame.server);
      case 'message': {
        const last = this.#rooms.get(frame.room);
        if (last === undefined) return; // Unsubscribed meanwhile.
        const message = frame.message as Message;
        if (last >= 0 && message.seq <= last) return; // A duplicate: already had it.
        this.#rooms.set(frame.room, message.seq);
        this.#emit('message', frame.room, message);
        return;
      }
      case 'subscribed':
        if ((this.#rooms.get(frame.room) ?? 0) < frame.lastSeq) this.#rooms.set(frame.room, frame.lastSeq);
        this.#emit('subscribed', frame.room, frame.lastSeq);
        return;
      case 'ack': {
        const pending = this.#pending.get(frame.clientMsgId);
        this.#pending.delete(frame.clientMsgId);
        pending?.resolve(frame.message as Message);
        return;
      }
      case 'presence':
        return this.#emit('presence', frame.room, frame.online);
      case 'typing':
        return this.#emit('typing', frame.room, frame.users);
      case 'unread':
        return this.#emit('unread', frame.rooms);
      case 'error': {
        const pending = frame.clientMsgId ? this.#pending.get(frame.clientMsgId) : undefined;
        // A refused send fails; one refused for rate is sent again after a pause (same clientMsgId).
        if (pending && frame.code === 'rate_limited') this.#resendLater(frame.clientMsgId);
        else if (pending) {
          this.#pending.delete(frame.clientMsgId);
          pending.reject(Object.assign(new Error(frame.message), { code: frame.code }));
        }
        this.#emit('error', frame as { code: string; message: string });
        return;
      }
    }
  }

  #resendLater(clientMsgId: string): void {
    const delay = RESEND_AFTER_MS * (1 + Math.random());
    setTimeout(() => {
      const pending = this.#pending.get(clientMsgId);
      if (pending) this.#sendFrame({ type: 'send', room: pending.room, text: pending.text, clientMsgId });
    }, delay);
  }

  #sendFrame(frame: object): void {
    if (this.#socket?.readyState === OPEN) this.#socket.send(JSON.stringify(frame));
  }

  #setStatus(status: ClientStatus, detail?: { code: number; reason: string }): void {
    this.#status = status;
    this.#emit('status', status, detail);
  }

  #emit<K extends keyof ChatClientEvents>(event: K, ...args: Parameters<ChatClientEvents[K]>): void {
    for (const listener of this.#listeners.get(event) ?? []) (listener as (...a: unknown[]) => void)(...args);
  }
}
